#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The flood of the keystroke benchmark (bench/browser/worker.mjs): PASSES x BYTES of '.' lines
# through the terminal in a scroll region below the first row, and every key typed shown on that
# first row as "key <ch> #<n>" (n counts the keys; the first row does not move when the terminal
# is resized). A shell's own echo would scroll away with the
# flood within the same chunk of output, so it is never on screen; this row stays until the next
# key, in the byte stream right after what the program wrote before it, like an echo.
# ^C ends it (the terminal modes and the scroll region are restored).
import os
import select
import signal
import sys
import termios
import tty

passes, size = int(sys.argv[1]), int(sys.argv[2])
rows = os.get_terminal_size(1).lines
region = b"\x1b[2r"  # rows 2 to the last; xterm.js resets the region on a resize
line = b"." * 79 + b"\n"
chunk = line * 64
old = termios.tcgetattr(0)
tty.setcbreak(0)  # no echo, no line editing; ^C still raises SIGINT
keys = 0
status = b""  # the first row's text
resized = False


def on_winch(_sig: int, _frame: object) -> None:
    global resized
    resized = True


def out(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def show_status() -> None:
    out(b"\x1b7\x1b[1;1H\x1b[2K" + status + b"\x1b8")


def show_keys() -> None:
    global keys, status
    while select.select([0], [], [], 0)[0]:
        for b in os.read(0, 64):
            keys += 1
            status = b"key %c #%d" % (b, keys)
            show_status()


try:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGWINCH, on_winch)
    out(b"\x1b[2J" + region + b"\x1b[%d;1H" % rows)
    for _ in range(passes):
        sent = 0
        while sent < size:
            if resized:  # the region follows the terminal's size; the first row is redrawn
                resized = False
                rows = os.get_terminal_size(1).lines
                out(region + b"\x1b[%d;1H" % rows)
                show_status()
            out(chunk)
            sent += len(chunk)
            show_keys()
except KeyboardInterrupt:
    pass
finally:
    termios.tcsetattr(0, termios.TCSANOW, old)
    out(b"\x1b[r\x1b[%d;1H\r\n" % rows)
