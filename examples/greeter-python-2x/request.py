"""Writes a GreetRequest (messages.proto) for a name to standard output,
for `stateloop send`:

    python request.py Alice | stateloop send --topic names --key Alice --value-file -
"""

import sys

from messages_pb2 import GreetRequest

if len(sys.argv) != 2:
    sys.exit("usage: request.py NAME")
sys.stdout.buffer.write(GreetRequest(name=sys.argv[1]).SerializeToString())
