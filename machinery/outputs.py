"""Writing outputs without losing anything: every file the project writes
goes through here.

- ``atomic_write(path)``: the caller writes into memory; the bytes then go
  to a temporary file beside ``path``, are flushed to the disk and renamed
  over ``path``. A crash, a kill or a full disk at any moment leaves either
  the old file or the whole new one. A failing write (no space left, a
  read-only file system, no permission) raises ``OutputError``, one line
  naming the file and the cause, after removing the temporary file.
- ``OutputFolder(folder)``: a run's claim on its output folder. It creates
  the folder, holds an exclusive lock on ``folder/.lock`` for as long as the
  run writes there (an OS lock, ``flock``: it dies with the process, so a
  killed run never blocks the next one), and refuses at once, naming the
  other process, when another live run holds it. Only the holder of the
  lock removes the temporary files that a killed run left in the folder:
  a live run's files are never touched.
- ``atomic_file(path)``: the same for a file written as a stream (too
  large to build in memory first).
- ``check_file_path(path, option, name)``: refuse before the work starts when
  a folder or a special file is where a file is to be written.
- ``check_free_space(folder, n_bytes, what)``: refuse before the work
  starts when a file of known size cannot fit.
- ``Staged(paths)``: outputs that replace finished ones only together, at
  the end: each is written beside its final name while the work goes on,
  and all are renamed into place when the ``with`` block ends well; an
  interrupted or failed run leaves the earlier files as they were.
- ``open_for_reading(path)``: a file read back, refused in one line when it
  is not a regular file (a FIFO would block, a device would not end).

Nothing here writes through a link: a new file is created beside its
final name (``O_EXCL``, which never follows one) and renamed over that
name, which replaces a link itself, not what it points to; a file written
in place (the lock, the cost history) is opened with ``O_NOFOLLOW`` and
refused when it is not a regular file of one name (a hard link to another
file would be written too).
"""
import contextlib
import errno
import fcntl
import io
import os
import shutil
import stat
import sys
import tempfile
import time

LOCK_NAME = '.lock'
TEMP_SUFFIX = '.tmp'


class OutputError(Exception):
    """A file or folder that cannot be written (one-line message)."""


def os_error_cause(error):
    """What went wrong, in a few words a user can act on."""
    causes = {errno.ENOSPC: 'no space left on the device',
              errno.EDQUOT: 'the disk quota is exceeded',
              errno.EROFS: 'the file system is read-only',
              errno.EACCES: 'permission denied',
              errno.EPERM: 'permission denied',
              errno.ENOENT: 'the folder does not exist',
              errno.ENOTDIR: 'a part of the path is not a folder',
              errno.EISDIR: 'it is a folder',
              errno.EEXIST: 'a file is in the way of the folder'}
    return causes.get(error.errno, error.strerror or str(error))


def temporary_prefix(path):
    """The name that the temporary files of atomic_write(path) start
    with: hidden, beside the file."""
    return '.' + os.path.basename(path) + '.'


@contextlib.contextmanager
def atomic_write(path, mode='wb'):
    """Yield an in-memory file (bytes for 'wb', text for 'w'); on leaving
    the block, put its contents at ``path`` atomically (see the module
    docstring). An exception inside the block writes nothing."""
    if mode not in ('wb', 'w'):
        raise ValueError("atomic_write writes 'wb' or 'w', not %r" % mode)
    buffer = io.BytesIO() if mode == 'wb' else io.StringIO()
    yield buffer
    data = buffer.getvalue()
    write_bytes(path, data if mode == 'wb' else data.encode('utf-8'))


def write_bytes(path, data):
    """Put ``data`` at ``path`` atomically; OutputError when it cannot."""
    with atomic_file(path) as f:
        f.write(data)


@contextlib.contextmanager
def atomic_file(path, reserve=0):
    """Yield a binary file that is written beside ``path`` and, on leaving
    the block, flushed to the disk and renamed over it (a file too large
    to build in memory first). reserve: bytes to allocate on the disk
    beyond what was written, so that later writes in place cannot run out
    of space. OutputError when it cannot be written; an exception inside
    the block leaves ``path`` as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(path),
                                   suffix=TEMP_SUFFIX)
        with os.fdopen(fd, 'wb') as f:
            # mkstemp makes the file private (0600); give it the usual mode
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)
            yield f
            f.flush()
            if reserve > 0:
                os.posix_fallocate(f.fileno(), f.tell(), reserve)
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_folder(folder)  # the rename itself, durable
    except OSError as e:
        raise OutputError('cannot write %s: %s%s' % (
            path, os_error_cause(e),
            '; the previous file is unchanged' if os.path.exists(path)
            else '')) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


STAGED_SUFFIX = '.staged' + TEMP_SUFFIX


def staged_path(path):
    """Where Staged writes ``path`` until it replaces it: hidden, beside
    it, a temporary (remove_dead_temporaries clears a killed run's)."""
    return os.path.join(os.path.dirname(path),
                        temporary_prefix(path) + 'new' + STAGED_SUFFIX)


class Staged(object):
    """``with Staged([path, ...]) as stage:`` write each output at
    ``stage.path(path)`` (atomically, as every output); when the block
    ends well, every staged file is renamed over its final path, one after
    the other, with nothing left to fail between them; when it raises (an
    error, Ctrl-C, a stop signal), the staged files are removed and the
    finished files of an earlier run stay as they were. An output that the
    block did not write is left alone."""

    def __init__(self, paths):
        self.paths = list(paths)

    def path(self, path):
        if path not in self.paths:
            raise ValueError('%s is not one of the staged outputs' % path)
        return staged_path(path)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is not None:
            for path in self.paths:
                with contextlib.suppress(OSError):
                    os.remove(staged_path(path))
            return False
        for path in self.paths:
            if os.path.lexists(staged_path(path)):
                try:
                    os.replace(staged_path(path), path)
                except OSError as e:
                    raise OutputError('cannot put %s in place: %s' % (
                        path, os_error_cause(e))) from None
        for folder in {os.path.dirname(os.path.abspath(p))
                       for p in self.paths}:
            fsync_folder(folder)
        return False


def fsync_folder(folder):
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_dead_temporaries(path):
    """Remove the temporary files that atomic_write(path) left when its
    process was killed mid-write. Call it only while holding the lock of
    the folder (OutputFolder), so that no live writer owns them."""
    folder = os.path.dirname(os.path.abspath(path))
    # a staged output's own temporaries start with its hidden name
    prefixes = (temporary_prefix(path), temporary_prefix(staged_path(path)))
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(folder):
            if name.startswith(prefixes) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))


def note_replaced(paths, whose, log):
    """Say, in one line on ``log``, which of ``paths`` already exist and
    will be replaced by this run (``whose``: a phrase naming the run that
    wrote them); nothing when none does."""
    existing = [p for p in paths if os.path.exists(p)]
    if not existing:
        return
    written = max(os.path.getmtime(p) for p in existing)
    names = existing[0] if len(existing) == 1 else \
        ', '.join(existing[:-1]) + ' and ' + existing[-1]
    print('note: this run replaces %s, written %s by %s' % (
        names, time.strftime('%Y-%m-%d %H:%M', time.localtime(written)),
        whose), file=log, flush=True)


def check_file_path(path, option, name):
    """OutputError, before any work, when ``path`` cannot be a file that
    atomic_write replaces: a folder, or something else than a regular file
    (a FIFO, a device) is in its place. option: the flag that names it;
    name: a file name to suggest inside a folder."""
    if not path:
        raise OutputError('%s is empty: give a file name, such as %s'
                          % (option, name))
    if path.endswith(os.sep) or os.path.basename(path) in ('.', '..'):
        raise OutputError('%s %s names a folder: give a file name, such as '
                          '%s' % (option, path, os.path.join(path, name)))
    if os.path.isdir(path):
        raise OutputError('%s %s is a folder: give a file name, such as %s'
                          % (option, path, os.path.join(path, name)))
    kind = special_kind(path) or (
        'a link to nothing' if os.path.lexists(path) and
        not os.path.isfile(path) else '')
    if kind:
        raise OutputError('%s %s is %s, not a regular file: give the path of '
                          'a file to write' % (option, path, kind))


def special_kind(path):
    """'a FIFO (named pipe)', 'a character device', ... for such a file at
    ``path`` (opening a FIFO waits for its other end, reading a device may
    not end); '' for a regular file, a folder or nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ''
    for test, kind in ((stat.S_ISFIFO, 'a FIFO (named pipe)'),
                       (stat.S_ISCHR, 'a character device'),
                       (stat.S_ISBLK, 'a block device'),
                       (stat.S_ISSOCK, 'a socket')):
        if test(mode):
            return kind
    return ''


def check_free_space(folder, n_bytes, what):
    """OutputError when ``folder``'s file system has less than ``n_bytes``
    free (``what`` names the file, for the message)."""
    free = shutil.disk_usage(folder).free
    if free < n_bytes:
        raise OutputError(
            'not enough space in %s for %s: it needs %.1f MB and %.1f MB are '
            'free; free some space or choose another folder'
            % (folder, what, n_bytes / 1e6, free / 1e6))


class OutputFolder(object):
    """``with OutputFolder(folder) as out:``: create the folder and hold its
    lock (see the module docstring); OutputError when another run holds it
    or the folder cannot be written. ``out.path(name)`` joins a name."""

    def __init__(self, folder, option='--output-folder'):
        self.folder = folder
        self.option = option  # how the user chooses another folder
        self._lock = None

    def path(self, name):
        return os.path.join(self.folder, name)

    def __enter__(self):
        lock_path = self.path(LOCK_NAME)
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._lock = take_lock(lock_path)
        except Locked as holder:
            raise OutputError(
                'another run is writing to %s (%s): wait for it to finish, '
                'or choose another folder with %s'
                % (self.folder, holder, self.option)) from None
        except OSError as e:
            raise OutputError('cannot write to the output folder %s (%s): '
                              'choose another with %s'
                              % (self.folder, os_error_cause(e), self.option))
        return self

    def __exit__(self, *exc):
        release_lock(self._lock, self.path(LOCK_NAME))
        self._lock = None
        return False


class Locked(Exception):
    """Another live process holds the lock; str() says which."""


def take_lock(lock_path):
    """Open ``lock_path``, take its exclusive flock without waiting and
    write into it who holds it; return the open file. Locked when another
    live process holds it, OutputError when a link or anything but a
    regular file of one name is in its place (it is never written
    through), OSError when the file cannot be written."""
    while True:
        lock = open_in_place(lock_path, create=True)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            # a few hundred characters name the holder; no more is read
            holder = lock.read(300).strip() or 'another process'
            lock.close()
            raise Locked(holder) from None
        # the holder before us may have removed the file as it left: then
        # ours is a lock on nothing, and we try again
        try:
            same = os.fstat(lock.fileno()).st_ino == \
                os.lstat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                # who holds it, for the message of a process that finds it
                # taken; writing it also proves that the folder takes writes
                lock.truncate(0)
                lock.write('pid %d: %s' % (os.getpid(), ' '.join(sys.argv)))
                lock.flush()
                os.fsync(lock.fileno())
            except OSError:
                release_lock(lock, lock_path)
                raise
            return lock
        lock.close()


def open_in_place(path, create=False, inode=None):
    """``path`` opened for reading and writing in place, as text (the
    lock) or, with ``inode``, as binary (a file this process made, which
    must still be that file). It never follows a link: OutputError, one
    line, when a symbolic link, a hard link (a second name of another
    file), a FIFO, a device or a folder is there."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | \
        (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise OutputError(refusal(path, 'a symbolic link')) from None
        raise
    try:
        info = os.fstat(fd)
        kind = '' if stat.S_ISREG(info.st_mode) else \
            (special_kind(path) or 'not a regular file')
        if not kind and info.st_nlink > 1:
            kind = 'a hard link (one of %d names of a file)' % info.st_nlink
        if not kind and inode is not None and info.st_ino != inode:
            kind = 'another file than the one this run wrote there'
        if kind:
            raise OutputError(refusal(path, kind))
        os.set_blocking(fd, True)
        if inode is not None:
            return os.fdopen(fd, 'r+b')
        return os.fdopen(fd, 'r+', errors='backslashreplace')
    except BaseException:
        os.close(fd)
        raise


def refusal(path, kind):
    """The one line that refuses to write through what is at ``path``."""
    return ('%s is %s: a run writes only files of its own and never through '
            'a link; remove it, or choose another folder' % (path, kind))


def open_for_reading(path):
    """``path`` opened for reading, binary; OSError as open() raises it,
    and OutputError (one line) when it is not a regular file: a FIFO would
    wait for a writer, a device would never end. A symbolic link to a
    regular file is read (a user may link a model or a dataset)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            kind = 'a folder' if os.path.isdir(path) else \
                special_kind(path) or 'not a regular file'
            raise OutputError('%s is %s, not a file this project wrote: '
                              'give the path of one' % (path, kind))
        os.set_blocking(fd, True)
        return os.fdopen(fd, 'rb')
    except BaseException:
        os.close(fd)
        raise


def release_lock(lock, lock_path):
    """Give up a lock of take_lock, removing its file (while still holding
    it, so that no one locks the old file)."""
    with contextlib.suppress(OSError):
        os.remove(lock_path)
    lock.close()
