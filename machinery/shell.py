"""Words for a shell: how the command lines and the data loader write a
path into a command that a user pastes back."""
import os
import shlex


def shell_quote(word):
    """``word`` quoted for a shell. A path that is not valid text (bytes
    that are not UTF-8, which Python holds as surrogate escapes) is written
    as $'...' with those bytes as \\xNN, which bash and zsh read back as
    the very bytes."""
    try:
        word.encode('utf-8')
        return shlex.quote(word)
    except UnicodeEncodeError:
        pass
    out = []
    for byte in os.fsencode(word):
        char = chr(byte)
        out.append('\\' + char if char in "'\\" else char
                   if 32 <= byte < 127 else '\\x%02x' % byte)
    return "$'" + ''.join(out) + "'"
