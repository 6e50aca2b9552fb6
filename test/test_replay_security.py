"""Names from bags are data: message types go through an allow-list, children ignore the cwd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_replay_eval import wait_for_exit
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from monotakd_ros.bags.kitti2bag import STORAGES
from monotakd_ros.errors import BagError
from monotakd_ros.nodes.replay_eval import python_module_command
from monotakd_ros.ros.type_hashes import installed_type_hash, message_class, split_msg_type

EVIL_CODE = "from pathlib import Path\nPath(__file__).parent.with_name('PWNED').touch()\n"


def write_typed_bag(path: Path, claimed_types: dict[str, str]) -> Path:
    """A sqlite3 bag with one std_msgs/String per topic, whose metadata claims other types."""
    store = get_typestore(Stores.ROS2_KILTED)
    string = store.types["std_msgs/msg/String"]
    with Writer(path, version=9, storage_plugin=STORAGES["sqlite3"]) as writer:
        for index, topic in enumerate(claimed_types):
            connection = writer.add_connection(topic, "std_msgs/msg/String", typestore=store)
            writer.write(connection, 1_000 + index,
                         store.serialize_cdr(string(data="x"), "std_msgs/msg/String"))
    metadata = (path / "metadata.yaml").read_text()
    for topic, msgtype in claimed_types.items():
        # Each topic's type line follows its name line in the metadata.
        head, sep, tail = metadata.partition(f"name: {topic}\n")
        tail = tail.replace("type: std_msgs/msg/String", f"type: '{msgtype}'", 1)
        metadata = head + sep + tail
    (path / "metadata.yaml").write_text(metadata)
    return path


def evil_folder(root: Path, name: str) -> Path:
    """``root/name/`` whose import would create ``root/PWNED``."""
    package = root / name
    (package / "msg").mkdir(parents=True)
    (package / "__init__.py").write_text(EVIL_CODE)
    (package / "msg" / "__init__.py").write_text(EVIL_CODE + "class TFMessage:\n    pass\n")
    return package


@pytest.mark.parametrize(("msgtype", "match"), [
    ("TFMessage", "not of the form package/msg/Type"),
    ("", "not of the form"),
    ("tf2_msgs/TFMessage", "not of the form"),
    ("../../etc/msg/Passwd", "not of the form"),
    ("tf2_msgs/msg/TFMessage/extra", "not of the form"),
    ("tf2_msgs/srv/FrameGraph", "not of the form"),
    ("os/msg/System", "not an installed interface"),
    ("this/msg/Thing", "not an installed interface"),
])
def test_message_types_outside_the_allow_list_are_refused(msgtype: str, match: str) -> None:
    with pytest.raises(BagError, match=match):
        message_class(msgtype)
    assert "this" not in sys.modules  # the Zen of Python was not printed


def test_installed_types_resolve_and_hash() -> None:
    from tf2_msgs.msg import TFMessage

    assert split_msg_type("tf2_msgs/msg/TFMessage") == ("tf2_msgs", "TFMessage")
    assert message_class("tf2_msgs/msg/TFMessage") is TFMessage
    assert installed_type_hash("tf2_msgs/msg/TFMessage").startswith("RIHS01_")
    assert installed_type_hash("tf2_msgs/msg/NoSuchType") is None
    with pytest.raises(BagError, match="not of the form"):
        installed_type_hash("../tf2_msgs/msg/TFMessage")


def test_a_shadowing_folder_in_the_cwd_is_not_imported(tmp_path: Path) -> None:
    """``python -c`` puts the cwd first on sys.path, so tf2_msgs/ there would win the import."""
    evil_folder(tmp_path, "tf2_msgs")
    code = ("from monotakd_ros.ros.type_hashes import message_class\n"
            "try:\n    message_class('tf2_msgs/msg/TFMessage')\n"
            "except Exception as err:\n    print(type(err).__name__, err)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert "BagError" in done.stdout and "outside the install prefixes" in done.stdout
    assert not (tmp_path / "PWNED").exists()


def test_replay_does_not_run_code_named_by_a_bag(tmp_path: Path) -> None:
    """A /tf_static claiming evilpkg/msg/TFMessage, with evilpkg/ in the cwd: nothing runs."""
    bag = write_typed_bag(tmp_path / "bag", {"/tf_static": "evilpkg/msg/TFMessage",
                                             "/zen": "this/msg/Thing", "/bare": "Thing",
                                             "/ok": "std_msgs/msg/String"})
    evil_folder(tmp_path, "evilpkg")
    # The worst case: python -m keeps the cwd (and evilpkg/) first on sys.path.
    proc = subprocess.Popen([sys.executable, "-m", "monotakd_ros.nodes.replay", str(bag),
                             "--ack-timeout", "1"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    code, output = wait_for_exit(proc, 30.0)
    assert code == 0, output
    assert not (tmp_path / "PWNED").exists()
    assert "The Zen of Python" not in output and "Traceback" not in output
    assert "/tf_static not replayed: message type evilpkg/msg/TFMessage: not an installed" in (
        output)
    assert "/bare not replayed: message type 'Thing' is not of the form" in output
    assert "finished: 1 messages" in output  # only /ok


def test_children_start_without_the_cwd_on_sys_path(tmp_path: Path) -> None:
    """``python -P -m``: a json/ folder in the cwd does not replace the standard library's."""
    evil_folder(tmp_path, "json")
    command = python_module_command("monotakd_ros.ros.type_hashes", "tf2_msgs")
    assert command[:3] == [sys.executable, "-P", "-m"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert not (tmp_path / "PWNED").exists() and "tf2_msgs/msg/TFMessage" in done.stdout
    # Without -P the same start imports the folder (this is what the flag prevents).
    subprocess.run([command[0], *command[2:]], cwd=tmp_path, capture_output=True, timeout=60)
    assert (tmp_path / "PWNED").exists()


def _process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    parent_code = (
        "import sys, time\nfrom pathlib import Path\n"
        "from monotakd_ros.nodes.replay_eval import _Processes\n"
        "proc = _Processes(Path(sys.argv[1])).start('child', [sys.executable, '-c', "
        "'import time; time.sleep(120)'])\n"
        "print(proc.pid, flush=True)\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", parent_code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert not _process_gone(child_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10.0
        while not _process_gone(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = _process_gone(child_pid)
        if not gone:
            os.kill(child_pid, signal.SIGKILL)
        assert gone, "the child outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
