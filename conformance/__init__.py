"""mana-conformance: an executable conformance kit for docs/PROTOCOL.md (mana.ssh.v1).

Modules: profiles (the three wire profiles), client (a raw protocol client), cases (the
MUST/SHOULD cases), runner (command line, summary, JUnit XML), echo_target (the echo target the
echo cases expect), reference/server.py (scripted reference server). See docs/conformance.md.
"""
