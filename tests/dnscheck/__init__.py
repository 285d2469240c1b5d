"""Tests of DNS authentication checks, DKIM signing and the sending-domain pages."""
