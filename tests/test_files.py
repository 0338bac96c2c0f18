"""Output folders are checked writable before the work that fills them; nothing is left."""

import os

import pytest

from keras_dpnp.files import UnwritableError, check_writable


def test_a_folder_to_be_created_is_checked_where_it_would_be_created(tmp_path):
    check_writable(str(tmp_path / "not" / "yet" / "there"))
    check_writable(str(tmp_path))
    assert os.listdir(tmp_path) == []


def test_a_file_in_the_way_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(
        UnwritableError, match=rf"^cannot write to {blocker}/report: {blocker} is not a folder$"
    ):
        check_writable(str(blocker / "report"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    with pytest.raises(UnwritableError, match=r"cannot write to .*locked: .*Permission denied"):
        check_writable(str(locked))
