"""outputs.py on real file systems: atomic writes that fail cleanly (a full
tmpfs, a read-only one, another user's folder), kills at the worst moment,
and one run per output folder."""
import os
import shutil
import signal
import subprocess
import sys

import pytest

from machinery import outputs
from conftest import REPO, run_script

IS_ROOT = os.geteuid() == 0


def temporaries(folder):
    return [f for f in os.listdir(str(folder)) if f.endswith('.tmp')]


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path):
    path = str(tmp_path / 'f.bin')
    with outputs.atomic_write(path) as f:
        f.write(b'old')
    with pytest.raises(RuntimeError):
        with outputs.atomic_write(path) as f:
            f.write(b'partial new')
            raise RuntimeError('crash mid-write')
    assert open(path, 'rb').read() == b'old'
    assert os.listdir(str(tmp_path)) == ['f.bin']  # no temp file left
    with outputs.atomic_write(path, 'w') as f:
        f.write('new')
    assert open(path, 'rb').read() == b'new'
    assert os.stat(path).st_mode & 0o044  # readable by others, as usual


@pytest.fixture
def small_fs(tmp_path):
    """A 64 KiB tmpfs, mounted for the test (root only)."""
    if not IS_ROOT or shutil.which('mount') is None:
        pytest.skip('mounting a small tmpfs needs root')
    mount_point = tmp_path / 'small'
    mount_point.mkdir()
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs',
                        str(mount_point)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % r.stderr.strip())
    yield mount_point
    subprocess.run(['umount', '-l', str(mount_point)], check=True)


def test_a_full_disk_is_one_line_and_the_old_file_stays(small_fs):
    path = str(small_fs / 'f.bin')
    with outputs.atomic_write(path) as f:
        f.write(b'o' * 20000)
    with pytest.raises(outputs.OutputError) as caught:
        with outputs.atomic_write(path) as f:
            f.write(b'n' * 60000)  # fits alone, not beside the old file
    message = str(caught.value)
    assert message == ('cannot write %s: no space left on the device; the '
                       'previous file is unchanged' % path)
    assert open(path, 'rb').read() == b'o' * 20000
    assert temporaries(small_fs) == []


def test_a_read_only_file_system_is_one_line(small_fs):
    path = str(small_fs / 'f.bin')
    with outputs.atomic_write(path) as f:
        f.write(b'old')
    subprocess.run(['mount', '-o', 'remount,ro', str(small_fs)], check=True)
    with pytest.raises(outputs.OutputError,
                       match='f.bin: the file system is read-only; the '
                             'previous file is unchanged'):
        with outputs.atomic_write(path) as f:
            f.write(b'new')
    assert open(path, 'rb').read() == b'old'
    with pytest.raises(outputs.OutputError, match='read-only'):
        with outputs.OutputFolder(str(small_fs)):
            pass


def test_free_space_is_checked_before_the_work(small_fs):
    outputs.check_free_space(str(small_fs), 1000, 'the checkpoint')
    with pytest.raises(outputs.OutputError,
                       match='not enough space in .* for the checkpoint: it '
                             'needs 1.0 MB'):
        outputs.check_free_space(str(small_fs), 10 ** 6, 'the checkpoint')


@pytest.fixture
def immutable_folder(tmp_path):
    """A folder that nobody, root included, may add files to (chattr +i,
    on file systems that have it)."""
    folder = tmp_path / 'locked'
    folder.mkdir()
    (folder / 'f.bin').write_bytes(b'old')
    if shutil.which('chattr') is None or subprocess.run(
            ['chattr', '+i', str(folder)], capture_output=True).returncode:
        pytest.skip('chattr +i is not available here')
    yield folder
    subprocess.run(['chattr', '-i', str(folder)], check=True)


def test_a_folder_that_refuses_writes_is_permission_denied(immutable_folder):
    path = str(immutable_folder / 'f.bin')
    with pytest.raises(outputs.OutputError) as caught:
        with outputs.atomic_write(path) as f:
            f.write(b'new')
    assert str(caught.value) == ('cannot write %s: permission denied; the '
                                 'previous file is unchanged' % path)
    assert open(path, 'rb').read() == b'old'
    with pytest.raises(outputs.OutputError,
                       match='cannot write to the output folder .* '
                             '.permission denied.: choose another with '
                             '--output-folder'):
        with outputs.OutputFolder(str(immutable_folder)):
            pass


def test_a_kill_before_the_rename_leaves_the_old_file(tmp_path):
    """The worst moment: the new bytes are in the temporary file, the rename
    has not happened. The old file is whole; the next holder of the folder
    removes the dead run's temporary file."""
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old contents')
    code = ('import os, sys\nfrom machinery import outputs\n'
            'os.replace = lambda *a: os.kill(os.getpid(), 9)\n'
            'with outputs.atomic_write(sys.argv[1]) as f:\n'
            '    f.write(b"the whole new contents")\n')
    r = run_script(['-c', code, str(path)])
    assert r.returncode == -signal.SIGKILL
    assert path.read_bytes() == b'old contents'
    assert len(temporaries(tmp_path)) == 1
    with outputs.OutputFolder(str(tmp_path)):
        outputs.remove_dead_temporaries(str(path))
    assert temporaries(tmp_path) == []
    assert path.read_bytes() == b'old contents'


HOLD = ('import sys, time\nfrom machinery import outputs\n'
        'with outputs.OutputFolder(sys.argv[1]):\n'
        '    print("holding", flush=True)\n'
        '    time.sleep(60)\n')


def test_a_second_run_is_refused_naming_the_first_until_it_dies(tmp_path):
    folder = str(tmp_path / 'out')
    holder = subprocess.Popen([sys.executable, '-c', HOLD, folder], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'holding\n'
        with pytest.raises(outputs.OutputError) as caught:
            with outputs.OutputFolder(folder):
                pass
        assert str(caught.value).startswith(
            'another run is writing to %s (pid %d: -c %s)'
            % (folder, holder.pid, folder))
        assert '--output-folder' in str(caught.value)
    finally:
        holder.kill()
        holder.wait()
    # the lock died with the process: the next run goes ahead
    with outputs.OutputFolder(folder):
        pass
    assert os.listdir(folder) == []  # and removes the lock file as it ends


def test_the_lock_is_not_taken_twice_in_one_process(tmp_path):
    with outputs.OutputFolder(str(tmp_path)):
        with pytest.raises(outputs.OutputError, match='another run'):
            with outputs.OutputFolder(str(tmp_path)):
                pass
