"""Runs moto's server on 127.0.0.1 at a free port for the Rust tests.

Prints the port on the first line of stdout, then serves until stdin reaches EOF, which happens
when the test process that started it exits (however it exits), so no server outlives its tests.
"""
import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer("127.0.0.1", 0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
