# The package test's image (tests/tests/containers.rs): the Debian base with systemd as its init,
# the test users, sshd's drop-in and sqlite3 (README's backup step), without pam-mfa: the test
# installs the .deb itself.
# containers/build.sh --tests builds it. Run it as systemd in a container needs:
#   docker run --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
#     -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock IMAGE
ARG BASE
FROM ${BASE}
COPY containers/test/users.sh /tmp/
RUN sh /tmp/users.sh && rm /tmp/users.sh
COPY examples/sshd_config.d/pam-mfa-password.conf /etc/ssh/sshd_config.d/50-pam-mfa.conf
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3 >/dev/null
RUN ssh-keygen -A
EXPOSE 22
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
