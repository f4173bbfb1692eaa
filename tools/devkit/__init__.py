# SPDX-License-Identifier: Apache-2.0
"""The dev harness, Python side (twin of the .mjs modules next to it): one launcher each for
mana-gateway (gateway.py), a real sshd (sshd.py) and the banner targets (targets.py), one HS256
minter (tokens.py), loopback helpers (net.py). Standard library only; Debian's /usr/bin/python3.

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from devkit import gateway, sshd, targets, tokens
"""
