"""A tiny vulnerable web server for recordings (loopback only).

GET /run?c=CMD runs CMD with sh; GET /f/NAME serves a file of the directory in argv[2].
usage: webshell.py PORT_FILE DIRECTORY (the port it got is written to PORT_FILE)
"""

import http.server
import os
import subprocess
import sys
import urllib.parse

FILES = sys.argv[2] if len(sys.argv) > 2 else "/tmp"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/run":
            command = urllib.parse.parse_qs(url.query)["c"][0]
            out = subprocess.run(["/bin/sh", "-c", command], capture_output=True).stdout
        else:
            with open(os.path.join(FILES, os.path.basename(url.path)), "rb") as handle:
                out = handle.read()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1], "w") as port_file:
    port_file.write(str(server.server_address[1]))
server.serve_forever()
