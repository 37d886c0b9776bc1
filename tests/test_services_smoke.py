"""The real service fixtures start and answer (memcached text protocol, MariaDB SQL)."""

import socket


def test_memcached_answers(memcached_server):
    with socket.create_connection((memcached_server.host, memcached_server.port), timeout=5) as s:
        s.sendall(b"set k 0 0 2\r\nhi\r\nget k\r\n")
        data = b""
        while b"END" not in data:
            data += s.recv(1024)
    assert b"STORED" in data and b"VALUE k 0 2\r\nhi" in data


def test_mariadb_answers(mariadb_server):
    conn = mariadb_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            (version,) = cur.fetchone()
    finally:
        conn.close()
    assert "MariaDB" in version
