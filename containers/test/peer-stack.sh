#!/bin/sh
# Puts a peer module where pam_mfa goes in the test image (after common-auth in sshd, su,
# sudo and login), for the side-by-side comparison (tests/src/scenarios.rs, tests/src/bin/parity.rs).
#   peer-stack.sh google-authenticator   # each user's ~/.google_authenticator
#   peer-stack.sh oath                   # /etc/users.oath
set -e
case "$1" in
  google-authenticator) line='auth required pam_google_authenticator.so' ;;
  oath)
    line='auth required pam_oath.so usersfile=/etc/users.oath window=1 digits=6'
    install -m 0600 /dev/null /etc/users.oath
    ;;
  *) echo "peer-stack.sh: unknown module $1" >&2; exit 2 ;;
esac
for service in sshd su sudo login; do
  sed -i "/^@include common-auth/a $line" "/etc/pam.d/$service"
done
