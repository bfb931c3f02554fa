"""A raw LMTP client for the end-to-end tests: writes exactly the bytes a
test gives it (pipelined, broken, partial) and reads replies one by one."""
import re
import socket

REPLY_LINE = re.compile(rb"^(\d{3})([ -])(.*)$")


class Reply:
    def __init__(self, code, lines):
        self.code = code
        self.lines = lines
        self.text = "\n".join(lines)
        m = re.match(r"^(\d\.\d{1,3}\.\d{1,3}) ", lines[-1] + " ")
        self.enh = m.group(1) if m else None

    def __repr__(self):
        return "<%d %s>" % (self.code, self.text)


class LmtpConn:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r")

    def reply(self):
        lines = []
        while True:
            line = self._line()
            m = REPLY_LINE.match(line)
            if not m:
                raise ValueError("not an LMTP reply line: %r" % line)
            lines.append(m.group(3).decode(errors="replace"))
            if m.group(2) == b" ":
                return Reply(int(m.group(1)), lines)

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def greet(self):
        """Greeting and LHLO: returns the LHLO reply."""
        assert self.reply().code == 220
        self.send("LHLO client.example.test\r\n")
        return self.reply()

    def closed_by_server(self):
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def data_block(msg):
    """msg (bytes, any line endings) as DATA sends it: CRLF, dot-stuffed, '.'."""
    lines = msg.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = [b"." + l if l.startswith(b".") else l for l in lines]
    return b"\r\n".join(out) + b"\r\n.\r\n"
