# Copyright (c) dockhand.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An "engine" that accepts connections on a unix socket and never answers.

usage: silent_engine.py SOCKET_PATH SECONDS  (exits by itself after SECONDS)
"""

import socket
import sys
import time


def main():
    path, seconds = sys.argv[1], float(sys.argv[2])
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen(8)
    server.settimeout(0.5)
    connections = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connections.append(server.accept()[0])  # kept open, never read, never answered
        except socket.timeout:
            continue
    for connection in connections:
        connection.close()
    server.close()


if __name__ == "__main__":
    main()
