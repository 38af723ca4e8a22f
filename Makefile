# Builds and installs pam-mfa with the layout of its Debian package, for any distribution.
#
#   make                       # cargo build --release
#   sudo make install          # then: systemctl daemon-reload; systemctl reload dbus;
#                              #   systemctl enable --now mfad.socket mfad.service
#   sudo make uninstall        # keeps /etc/pam-mfa and the state in /var/lib/pam-mfa; first:
#                              #   systemctl disable --now mfad.socket mfad.service
#   make install DESTDIR=/tmp/stage PREFIX=/usr
#
# PREFIX (/usr) holds the programs, man pages, examples and completions. The PAM module goes where
# libpam looks for modules (PAMDIR: beside pam_unix.so), the D-Bus files under
# $(DBUSDIR) (/usr/share/dbus-1: dbus-daemon reads nothing under /usr/local) and the units
# (mfad.service, and mfad.socket, which holds the login socket) under $(UNITDIR), whatever
# PREFIX is. The configuration file is installed only if there is none.

PREFIX ?= /usr
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
EXAMPLESDIR ?= $(DATADIR)/doc/pam-mfa/examples
SYSCONFDIR ?= /etc
MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch 2>/dev/null)
PAMDIR ?= $(or $(if $(MULTIARCH),/lib/$(MULTIARCH)/security),$(firstword $(wildcard /usr/lib64/security /lib64/security)),/usr/lib/security)
DBUSDIR ?= /usr/share/dbus-1
UNITDIR ?= /lib/systemd/system
PAMCONFIGDIR ?= /usr/share/pam-configs
CARGO ?= cargo
# Where cargo builds: CARGO_TARGET_DIR when set, as cargo does.
TARGET ?= $(or $(CARGO_TARGET_DIR),target)/release

INSTALL ?= install

.PHONY: all install uninstall

# The C code that crates compile (the bundled SQLite, openssl-sys's probe) gets Debian's
# hardening flags where dpkg-buildflags is found, and the changelog's date as
# SOURCE_DATE_EPOCH: what dpkg-buildpackage sets for the package's build. Cargo builds those
# crates again when either changes, so with the same values the package reuses this build.
ifneq ($(shell command -v dpkg-buildflags),)
export CFLAGS ?= $(shell dpkg-buildflags --get CFLAGS)
export SOURCE_DATE_EPOCH ?= $(shell dpkg-parsechangelog -l debian/changelog -S Timestamp 2>/dev/null)
endif

# The three installed parts only: not the tests, the benchmarks (bench/) or xtask, which
# generates files that are committed (docs/man, docs/completions, examples/mfad.toml).
# debian/rules runs the same command, so a package built after `make` reuses its build.
all:
	$(CARGO) build --release --locked -p pam_mfa -p mfad -p mfactl

# Nothing is built here (run make first, as yourself): install only copies.
install:
	@for part in libpam_mfa.so mfad mfactl; do \
	  test -f $(TARGET)/$$part || { echo "$(TARGET)/$$part is missing: run make first" >&2; exit 1; }; \
	done
	$(INSTALL) -D -m 0644 $(TARGET)/libpam_mfa.so $(DESTDIR)$(PAMDIR)/pam_mfa.so
	$(INSTALL) -D -m 0755 $(TARGET)/mfad $(DESTDIR)$(SBINDIR)/mfad
	$(INSTALL) -D -m 0755 $(TARGET)/mfactl $(DESTDIR)$(BINDIR)/mfactl
	$(INSTALL) -D -m 0644 dbus/org.pam_mfa.Mfad1.conf $(DESTDIR)$(DBUSDIR)/system.d/org.pam_mfa.Mfad1.conf
	sed 's|/usr/sbin/mfad|$(SBINDIR)/mfad|' dbus/system-services/org.pam_mfa.Mfad1.service \
	  | $(INSTALL) -D -m 0644 /dev/stdin $(DESTDIR)$(DBUSDIR)/system-services/org.pam_mfa.Mfad1.service
	sed 's|/usr/sbin/mfad|$(SBINDIR)/mfad|' systemd/mfad.service \
	  | $(INSTALL) -D -m 0644 /dev/stdin $(DESTDIR)$(UNITDIR)/mfad.service
	$(INSTALL) -D -m 0644 systemd/mfad.socket $(DESTDIR)$(UNITDIR)/mfad.socket
	$(INSTALL) -D -m 0644 pam-configs/mfa $(DESTDIR)$(PAMCONFIGDIR)/mfa
	$(INSTALL) -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/pam-mfa
	test -e $(DESTDIR)$(SYSCONFDIR)/pam-mfa/mfad.toml \
	  || $(INSTALL) -m 0644 examples/mfad.toml $(DESTDIR)$(SYSCONFDIR)/pam-mfa/mfad.toml
	$(INSTALL) -d -m 0755 $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 0644 docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 docs/man/*.8 $(DESTDIR)$(MANDIR)/man8/
	cd examples && find . -type f | sort | while read -r file; do \
	  $(INSTALL) -D -m 0644 "$$file" "$(DESTDIR)$(EXAMPLESDIR)/$$file" || exit 1; \
	done
	$(INSTALL) -D -m 0644 docs/completions/mfactl.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/mfactl
	$(INSTALL) -D -m 0644 docs/completions/_mfactl $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_mfactl
	$(INSTALL) -D -m 0644 docs/completions/mfactl.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/mfactl.fish

# Removes what install put in place, except the configuration (yours to keep or delete) and
# mfad's state (/var/lib/pam-mfa). Take pam_mfa.so out of every PAM file first: a "required"
# line naming a module that is gone denies every login through that file.
uninstall:
	@if grep -ls 'pam_mfa\.so' $(DESTDIR)/etc/pam.d/* >/dev/null 2>&1; then \
	  echo "pam_mfa.so is still used in: $$(grep -ls 'pam_mfa\.so' $(DESTDIR)/etc/pam.d/* | tr '\n' ' ')" >&2; \
	  echo "remove it from there first (pam-auth-update --disable mfa for common-auth)" >&2; exit 1; \
	fi
	rm -f $(DESTDIR)$(PAMDIR)/pam_mfa.so $(DESTDIR)$(SBINDIR)/mfad $(DESTDIR)$(BINDIR)/mfactl
	rm -f $(DESTDIR)$(DBUSDIR)/system.d/org.pam_mfa.Mfad1.conf
	rm -f $(DESTDIR)$(DBUSDIR)/system-services/org.pam_mfa.Mfad1.service
	rm -f $(DESTDIR)$(UNITDIR)/mfad.service $(DESTDIR)$(UNITDIR)/mfad.socket
	rm -f $(DESTDIR)$(PAMCONFIGDIR)/mfa
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(wildcard docs/man/*.1)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard docs/man/*.5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard docs/man/*.8)))
	rm -rf $(DESTDIR)$(EXAMPLESDIR)
	rm -f $(DESTDIR)$(DATADIR)/bash-completion/completions/mfactl
	rm -f $(DESTDIR)$(DATADIR)/zsh/vendor-completions/_mfactl
	rm -f $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/mfactl.fish
