package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// MACRange is an inclusive range of MAC addresses (a vendor prefix, or
// one device's address).
type MACRange struct {
	From, To [6]byte
}

func macText(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ClassPolicy is a device class's country policy, ready to render for
// an enforcement point: which devices are the class's, and which
// networks they may (or may not) reach.
type ClassPolicy struct {
	// Class names the class (the nftables table is entente_class_NAME).
	Class string
	// MemberNets and MemberMACs are the class's devices: networks and
	// addresses, and MAC ranges (vendor prefixes, known devices).
	MemberNets []netip.Prefix
	MemberMACs []MACRange
	// Local is always reachable: the constituency and the special-purpose
	// ranges (traffic there is not egress).
	Local []netip.Prefix
	// Deny selects the mode: false, only Targets (and Allow and Local)
	// are reachable; true, Targets are not (except where Allow says).
	Deny bool
	// Targets are the networks of the countries the policy names.
	Targets []netip.Prefix
	// Allow are networks always reachable (allow_networks).
	Allow []netip.Prefix
	// Countries names the countries of Targets, for the header.
	Countries []string
	// Domains are the names the class may resolve (the RPZ walled
	// garden); empty when the class permits none by name.
	Domains []string
}

// ClassPolicyFormats lists the formats a class policy renders to.
var ClassPolicyFormats = []string{FormatNftables, FormatPlain, FormatRPZ}

// RenderClassPolicy writes a class policy as an nftables ruleset (the
// class's devices may reach only the permitted networks, or not the
// denied ones), a plain list (the permitted networks, or the denied
// ones in deny mode) or an RPZ zone (a walled garden of the permitted
// domains, for a resolver view that serves the class's devices).
func RenderClassPolicy(w io.Writer, format string, p *ClassPolicy, opts Options) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var err error
	switch format {
	case FormatNftables:
		err = renderClassNft(bw, p)
	case FormatPlain:
		nets := Aggregate(append(append([]netip.Prefix(nil), p.Targets...), p.Allow...))
		if p.Deny {
			nets = Aggregate(append([]netip.Prefix(nil), p.Targets...))
		}
		var buf []byte
		for _, n := range nets {
			buf = appendPrefix(buf[:0], n)
			buf = append(buf, '\n')
			bw.Write(buf)
		}
	case FormatRPZ:
		err = renderClassRPZ(bw, p, &opts)
	default:
		return fmt.Errorf("a class policy renders as %s, not %q", strings.Join(ClassPolicyFormats, ", "), format)
	}
	if err != nil {
		return fmt.Errorf("export class %s as %s: %w", p.Class, format, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export class %s as %s: %w", p.Class, format, err)
	}
	return nil
}

// nftSet writes an interval set of prefixes of one family.
func nftSet(w *bufio.Writer, name, typ string, ps []netip.Prefix, want func(netip.Prefix) bool) int {
	fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n", name, typ)
	n := 0
	var buf []byte
	for _, p := range ps {
		if !want(p) {
			continue
		}
		buf = buf[:0]
		switch {
		case n == 0:
			buf = append(buf, "\t\telements = {\n\t\t\t"...)
		case n%8 == 0:
			buf = append(buf, ",\n\t\t\t"...)
		default:
			buf = append(buf, ", "...)
		}
		buf = appendPrefix(buf, p)
		w.Write(buf)
		n++
	}
	if n > 0 {
		w.WriteString("\n\t\t}\n")
	}
	w.WriteString("\t}\n\n")
	return n
}

func is4(p netip.Prefix) bool { return p.Addr().Is4() }
func is6(p netip.Prefix) bool { return p.Addr().Is6() }

func renderClassNft(w *bufio.Writer, p *ClassPolicy) error {
	if len(p.MemberNets) == 0 && len(p.MemberMACs) == 0 {
		return errors.New("the class has no members the firewall can recognise (networks, addresses or MACs): devices assigned by DHCP host name or fingerprint need profiles (--profiles) that know their addresses")
	}
	table := nftName("entente_class_" + p.Class)
	members := Aggregate(p.MemberNets)
	mode := "may talk only to " + orAll(p.Countries) + " and the local networks"
	if p.Deny {
		mode = "may not talk to " + orAll(p.Countries)
	}
	fmt.Fprintf(w, "#!/usr/sbin/nft -f\n# Entente class policy: devices of class %s %s.\n", p.Class, mode)
	if len(p.Allow) > 0 {
		fmt.Fprintf(w, "# Always permitted: %d networks (allow_networks).\n", len(p.Allow))
	}
	fmt.Fprintf(w, "table inet %s\ndelete table inet %s\n\ntable inet %s {\n", table, table, table)
	nftSet(w, "members_v4", "ipv4_addr", members, is4)
	nftSet(w, "members_v6", "ipv6_addr", members, is6)
	fmt.Fprintf(w, "\tset members_mac {\n\t\ttype ether_addr\n\t\tflags interval\n")
	for i, m := range p.MemberMACs {
		switch {
		case i == 0:
			w.WriteString("\t\telements = {\n\t\t\t")
		case i%4 == 0:
			w.WriteString(",\n\t\t\t")
		default:
			w.WriteString(", ")
		}
		if m.From == m.To {
			w.WriteString(macText(m.From))
		} else {
			w.WriteString(macText(m.From) + "-" + macText(m.To))
		}
	}
	if len(p.MemberMACs) > 0 {
		w.WriteString("\n\t\t}\n")
	}
	w.WriteString("\t}\n\n")
	allow := Aggregate(p.Allow)
	reject := "counter reject with icmpx type admin-prohibited"
	if !p.Deny {
		local := Aggregate(p.Local)
		permitted := Aggregate(append(append([]netip.Prefix(nil), p.Targets...), p.Allow...))
		nftSet(w, "local_v4", "ipv4_addr", local, is4)
		nftSet(w, "local_v6", "ipv6_addr", local, is6)
		nftSet(w, "permitted_v4", "ipv4_addr", permitted, is4)
		nftSet(w, "permitted_v6", "ipv6_addr", permitted, is6)
		w.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter - 5; policy accept;\n")
		w.WriteString("\t\tct state established,related accept\n")
		for _, m := range []string{"ip saddr @members_v4", "ether saddr @members_mac"} {
			fmt.Fprintf(w, "\t\t%s ip daddr @local_v4 accept\n\t\t%s ip daddr @permitted_v4 accept\n", m, m)
		}
		for _, m := range []string{"ip6 saddr @members_v6", "ether saddr @members_mac"} {
			fmt.Fprintf(w, "\t\t%s ip6 daddr @local_v6 accept\n\t\t%s ip6 daddr @permitted_v6 accept\n", m, m)
		}
		fmt.Fprintf(w, "\t\tip saddr @members_v4 %s\n\t\tip6 saddr @members_v6 %s\n\t\tether saddr @members_mac meta nfproto { ipv4, ipv6 } %s\n", reject, reject, reject)
		// New connections to the class's devices from elsewhere.
		fmt.Fprintf(w, "\t\tip daddr @members_v4 ip saddr != @local_v4 ip saddr != @permitted_v4 counter drop\n")
		fmt.Fprintf(w, "\t\tip6 daddr @members_v6 ip6 saddr != @local_v6 ip6 saddr != @permitted_v6 counter drop\n")
		w.WriteString("\t}\n}\n")
		return nil
	}
	denied := Aggregate(p.Targets)
	nftSet(w, "allowed_v4", "ipv4_addr", allow, is4)
	nftSet(w, "allowed_v6", "ipv6_addr", allow, is6)
	nftSet(w, "denied_v4", "ipv4_addr", denied, is4)
	nftSet(w, "denied_v6", "ipv6_addr", denied, is6)
	w.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter - 5; policy accept;\n")
	for _, m := range []string{"ip saddr @members_v4", "ether saddr @members_mac"} {
		fmt.Fprintf(w, "\t\t%s ip daddr @allowed_v4 accept\n\t\t%s ip daddr @denied_v4 %s\n", m, m, reject)
	}
	for _, m := range []string{"ip6 saddr @members_v6", "ether saddr @members_mac"} {
		fmt.Fprintf(w, "\t\t%s ip6 daddr @allowed_v6 accept\n\t\t%s ip6 daddr @denied_v6 %s\n", m, m, reject)
	}
	w.WriteString("\t\tip daddr @members_v4 ip saddr @denied_v4 ip saddr != @allowed_v4 counter drop\n")
	w.WriteString("\t\tip6 daddr @members_v6 ip6 saddr @denied_v6 ip6 saddr != @allowed_v6 counter drop\n")
	w.WriteString("\t}\n}\n")
	return nil
}

func orAll(cc []string) string {
	if len(cc) == 0 {
		return "no country"
	}
	return strings.Join(cc, ", ")
}

// renderClassRPZ writes a walled garden: the permitted domains pass, any
// other name is answered NXDOMAIN. It is meant for a resolver view whose
// clients are the class's devices.
func renderClassRPZ(w *bufio.Writer, p *ClassPolicy, o *Options) error {
	if len(p.Domains) == 0 {
		return errors.New("the class permits no domains (allow_domains): a country policy cannot be written as RPZ names; use nftables or plain")
	}
	zone := strings.TrimSuffix(o.Zone, ".")
	if zone == "" {
		zone = "entente-class-" + p.Class + ".rpz"
	}
	fmt.Fprintf(w, "; Entente class policy: devices of class %s may resolve only these names.\n", p.Class)
	w.WriteString("; Load it in a resolver view whose clients are the class's devices:\n")
	for _, m := range Aggregate(p.MemberNets) {
		fmt.Fprintf(w, ";   %s\n", m)
	}
	fmt.Fprintf(w, "$TTL 300\n@ IN SOA localhost. hostmaster.localhost. %d 3600 600 86400 300\n@ IN NS localhost.\n", o.now().Unix()&0x7fffffff)
	maxName := 253 - len(zone) - 1 - 2
	seen := map[string]bool{}
	for _, d := range p.Domains {
		d = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
		base, wild := strings.CutPrefix(d, "*.")
		if base == "" || strings.ContainsAny(base, "*?[] \t") || len(base) > maxName || seen[d] {
			continue
		}
		seen[d] = true
		fmt.Fprintf(w, "%s CNAME rpz-passthru.\n", base)
		if wild {
			fmt.Fprintf(w, "*.%s CNAME rpz-passthru.\n", base)
		}
	}
	w.WriteString("* CNAME .\n")
	return nil
}
