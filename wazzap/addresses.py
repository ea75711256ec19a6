"""
IP addresses and networks written one way everywhere: in bans, in the
per-address limits and in the log.

A dual-stack (C{tcp6:}) listener sees an IPv4 client as C{::ffff:192.0.2.7};
that is the same client as C{192.0.2.7} on a C{tcp:} listener, so it is
written as the plain IPv4 address.
"""

import ipaddress


def _ip(address):
    """
    C{address} (an L{ipaddress} address) as IPv4 if it is IPv4-mapped.
    """
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def normalise(host):
    """
    C{host} as an IP address in its standard form (C{2001:DB8:0::1} and
    C{2001:db8::1} are one, C{::ffff:127.0.0.2} is C{127.0.0.2}); anything
    that is not an IP address (a UNIX socket's path) is returned unchanged.
    """
    try:
        standard = str(_ip(ipaddress.ip_address(host)))
    except ValueError:
        return host
    # Usually it already was: keep the transport's string rather than a
    # copy per connection.
    return host if standard == host else standard


def ban_target(word):
    """
    C{word} as an address ban's target: an address in standard form, or a
    network in CIDR form (C{203.0.113.0/24}, C{2001:db8::/32}), with its host
    bits cleared; or L{None} if it is neither.
    """
    if "/" not in word:
        try:
            return str(_ip(ipaddress.ip_address(word)))
        except ValueError:
            return None
    try:
        network = ipaddress.ip_network(word, strict=False)
    except ValueError:
        return None
    mapped = _ip(network.network_address)
    if mapped is not network.network_address:
        # ::ffff:203.0.113.0/120 is the IPv4 network 203.0.113.0/24.
        if network.prefixlen < 96:
            return None
        network = ipaddress.ip_network((mapped, network.prefixlen - 96))
    if network.num_addresses == 1:
        return str(network.network_address)
    return str(network)


def network_of(target):
    """
    The network of a ban's C{target} if it is one, or L{None} for a single
    address or a nickname.
    """
    if "/" not in target:
        return None
    try:
        return ipaddress.ip_network(target)
    except ValueError:
        return None


def covers(target, address):
    """
    Whether a ban on C{target} (an address or a network, as L{ban_target}
    writes them) covers C{address} (as L{normalise} writes it).
    """
    if target == address:
        return True
    network = network_of(target)
    if network is None:
        return False
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False
