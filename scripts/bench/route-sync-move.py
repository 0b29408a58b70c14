#!/usr/bin/env python3
"""route-sync-move.py DOC A B NEXTHOP_ID RUNS: one node's move under `route-sync --watch`.

Run inside the network namespace where a `route-sync --watch -f DOC` runs. Each run writes the
next document (A, B, A, ...) beside DOC, then times from the rename over DOC to the kernel's
notification that nexthop NEXTHOP_ID changed, read on a netlink socket subscribed to
RTNLGRP_NEXTHOP before the rename. The time thus covers route-sync's wake-up on inotify, its
read and parse of the whole document, its plan, its nexthop replace and the kernel's
notification; not the writing of the file. Prints one time in ms per run.
"""
import os
import socket
import struct
import sys
import time

SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NEXTHOP = 270, 1, 32
RTM_NEWNEXTHOP, NHA_ID = 104, 1
NLMSGHDR, NHMSG = 16, 8


def align(n):
    return (n + 3) & ~3


def names_nexthop(data, at, length, nexthop_id):
    """Whether the RTM_NEWNEXTHOP message at `at` carries NHA_ID == nexthop_id."""
    a = at + NLMSGHDR + NHMSG
    while a + 4 <= at + length:
        alen, atype = struct.unpack_from("=HH", data, a)
        if atype == NHA_ID and struct.unpack_from("=I", data, a + 4)[0] == nexthop_id:
            return True
        a += align(max(alen, 4))
    return False


def wait_for_change(sock, nexthop_id):
    while True:
        data = sock.recv(1 << 20)
        at = 0
        while at + NLMSGHDR <= len(data):
            length, kind = struct.unpack_from("=IH", data, at)
            if kind == RTM_NEWNEXTHOP and names_nexthop(data, at, length, nexthop_id):
                return
            at += align(max(length, NLMSGHDR))


def main():
    doc, first, second, nexthop_id, runs = sys.argv[1:6]
    texts = [open(second).read(), open(first).read()]
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    sock.bind((0, 0))
    sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, RTNLGRP_NEXTHOP)
    for i in range(int(runs)):
        new = doc + ".new"
        with open(new, "w") as f:
            f.write(texts[i % 2])
        # Let route-sync's pass for the last run end, and the page cache hold the new file.
        time.sleep(0.3)
        start = time.monotonic()
        os.rename(new, doc)
        wait_for_change(sock, int(nexthop_id))
        print("%.3f" % ((time.monotonic() - start) * 1000), flush=True)


if __name__ == "__main__":
    main()
