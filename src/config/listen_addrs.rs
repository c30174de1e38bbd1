//! Listen addresses that clash: one socket address in two places among
//! `[listen] addrs`, `[listen.tls] addrs`, `[listen.redirect] addrs` and
//! `[admin] addr`. `run` could only fail on it at bind time, with "Address
//! already in use" and no key named; `check` and a reload say which two.

use std::net::SocketAddr;

use super::validate::{Checker, key};
use super::{Listen, Step};

impl Checker<'_> {
    /// Reports each address that clashes with one before it. Port 0 (any
    /// free port) never clashes; `0.0.0.0:80` clashes with `127.0.0.1:80`
    /// (the wildcard holds the port on every address of its family). With
    /// sockets from systemd, `[listen] addrs` are not bound and not compared.
    pub(super) fn listen_clashes(&mut self, listen: &Listen, admin: Option<SocketAddr>) {
        let plain: &[SocketAddr] = if self.systemd_sockets.is_some_and(|n| n > 0) { &[] } else { &listen.addrs };
        let tls = listen.tls.as_ref().map_or(&[][..], |t| &t.addrs);
        let redirect = listen.redirect.as_ref().map_or(&[][..], |r| &r.addrs);
        let mut seen: Vec<(SocketAddr, Vec<Step>)> = Vec::new();
        let tables: [(&[Step], &[SocketAddr]); 3] = [
            (&[key("listen"), key("addrs")], plain),
            (&[key("listen"), key("tls"), key("addrs")], tls),
            (&[key("listen"), key("redirect"), key("addrs")], redirect),
        ];
        let listed = tables.into_iter().flat_map(|(table, addrs)| {
            addrs.iter().enumerate().map(move |(i, addr)| (*addr, [table, &[Step::Index(i)]].concat()))
        });
        let admin = admin.map(|addr| (addr, vec![key("admin"), key("addr")]));
        for (addr, at) in listed.chain(admin) {
            if let Some((_, earlier)) = seen.iter().find(|(other, _)| clash(addr, *other)) {
                let earlier = super::locate::render(earlier);
                self.problem(&at, format!("{addr} clashes with {earlier}: a port can be listened on once per address"));
            }
            seen.push((addr, at));
        }
    }
}

fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    let same_family = a.is_ipv4() == b.is_ipv4();
    a.port() != 0
        && a.port() == b.port()
        && same_family
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
