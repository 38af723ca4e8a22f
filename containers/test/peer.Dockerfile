# A peer module in the same kind of container as pam-mfa's test image, for the side-by-side
# comparison: the same base, users, sshd settings and supervisor, with MODULE
# (google-authenticator or oath) where pam_mfa.so goes. containers/build.sh --tests builds both.
ARG BASE
FROM ${BASE}
ARG MODULE
COPY containers/test/users.sh containers/test/peer-stack.sh /tmp/
RUN sh /tmp/users.sh && sh /tmp/peer-stack.sh "$MODULE" && rm /tmp/users.sh /tmp/peer-stack.sh
COPY examples/sshd_config.d/pam-mfa-password.conf /etc/ssh/sshd_config.d/50-pam-mfa.conf
COPY containers/test/50-test.conf /etc/ssh/sshd_config.d/50-test.conf
COPY containers/init /usr/local/sbin/pam-mfa-init
EXPOSE 22
CMD ["/usr/local/sbin/pam-mfa-init"]
