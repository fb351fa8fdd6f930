"""The Asterisk channel: the AudioSocket audio server, the FastAGI server that routes calls, and
the ARI client that places and hangs up calls (docs/asterisk.md)."""
