"""What is at a path that should be a readable file, in words: the one place that tells "does not exist"
apart from a directory, a FIFO, a symlink loop, a dangling symlink or an invisible character in the name.

    file_problem(path) -> None when ``path`` is a regular file (or a link to one), else e.g.
                          "is a directory, not a file" / "is a symlink loop" / "does not exist"
"""

import errno
import os
import stat

# Characters that do not show when a path is printed (a byte-order mark from a Windows editor, zero-width
# spaces): a path holding one looks right and is not found.
INVISIBLE = {
    "\ufeff": "U+FEFF (a byte-order mark)",
    "\u200b": "U+200B (a zero-width space)",
    "\u00a0": "U+00A0 (a no-break space)",
    "\u200e": "U+200E (a left-to-right mark)",
}


def invisible_characters(text):
    """The invisible characters in ``text``, named (empty when none)."""
    return [name for char, name in INVISIBLE.items() if char in str(text)]


def file_problem(path):
    """None if ``path`` is a regular file (links followed), else what it is instead, as a phrase."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symlink loop (a link that leads back to itself)"
        if error.errno == errno.ENOTDIR:
            return "does not exist (a part of it is a file, not a directory)"
        if error.errno == errno.ENOENT:
            if os.path.islink(path):
                return f"is a symlink to {os.readlink(path)}, which does not exist"
            hidden = invisible_characters(path)
            if hidden:
                return f"does not exist: its name holds the invisible character {', '.join(hidden)}"
            return "does not exist"
        return f"cannot be read ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (a named pipe), not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    return "is not a regular file"
