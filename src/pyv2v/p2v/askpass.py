"""Password delivery to ssh without argv, environment or files: SSH_ASKPASS + a private socket.

`Askpass(password)` creates a 0700 temporary directory holding a Unix socket served by a
thread of this process and a tiny helper script.  ssh is started with SSH_ASKPASS=<helper> and
SSH_ASKPASS_REQUIRE=force (`env()`); when it needs the password it runs the helper, which sends
the prompt over the socket and prints the answer to ssh.  The server answers only password
prompts, only to peers of our own uid (SO_PEERCRED).  (An inherited pipe fd would not work:
ssh closes every fd above 2 at start-up.)  The secret lives only in this process's memory.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading

HELPER = """#!{python} -I
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({path!r})
s.sendall((sys.argv[1] if len(sys.argv) > 1 else "").encode() + b"\\0")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
if not data.startswith(b"+"):
    sys.exit(1)
sys.stdout.buffer.write(data[1:] + b"\\n")
"""

PASSWORD_PROMPT = re.compile(r"password", re.IGNORECASE)


class Askpass:
    """Serve `password` to ssh's askpass helper until `close()`."""

    def __init__(self, password: str | None) -> None:
        self._password = password
        self.prompts: list[str] = []  # prompt texts seen (never the answers)
        self.dir = tempfile.mkdtemp(prefix="p2v-askpass-")
        self.socket_path = os.path.join(self.dir, "socket")
        self.helper = os.path.join(self.dir, "askpass")
        fd = os.open(self.helper, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, "w") as f:
            f.write(HELPER.format(python=sys.executable, path=self.socket_path))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.socket_path)
        os.chmod(self.socket_path, 0o600)
        self._sock.listen(8)
        self._sock.settimeout(0.5)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="askpass", daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """Environment for ssh/scp: use our helper, even without a terminal."""
        return {"SSH_ASKPASS": self.helper, "SSH_ASKPASS_REQUIRE": "force",
                "DISPLAY": os.environ.get("DISPLAY", ":0")}

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except OSError:
                    pass

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            return
        data = b""
        while not data.endswith(b"\0") and len(data) < 4096:
            chunk = conn.recv(1024)
            if not chunk:
                break
            data += chunk
        prompt = data.rstrip(b"\0").decode(errors="replace")
        self.prompts.append(prompt)
        if self._password is not None and PASSWORD_PROMPT.search(prompt):
            conn.sendall(b"+" + self._password.encode())
        else:
            conn.sendall(b"-")

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
