#!/bin/sh
# The test containers' Unix users and groups (run once, when the image is built).
# Every user's password is "correct horse". alice, dave and frank may use sudo; dave is in
# wheel, which the group-rule test names in enforcement.groups.
set -e
groupadd wheel
for user in alice bob carol dave erin frank loop1 loop2 loop3 loop4 loop5 loop6 loop7 loop8; do
  useradd --create-home --shell /bin/bash "$user"
  echo "$user:correct horse" | chpasswd
done
usermod -aG sudo alice
usermod -aG sudo,wheel dave
usermod -aG sudo frank
