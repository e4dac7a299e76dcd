package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Net puts each node in a network namespace of its own, joined by a bridge
// in the root namespace, so that one node's Raft traffic can be cut while
// clients (in the root namespace) still reach every node: the partition
// Jepsen makes with iptables between hosts. It needs root and iproute2 +
// iptables; NewNet says clearly when they are missing.
//
// Node i (from 1) has address 10.213.S.(10+i), where S comes from the run
// id; the bridge is 10.213.S.1.
type Net struct {
	id     string
	subnet string // "10.213.S"
	bridge string
	nodes  int
}

// RaftPort and ClientPort are the same on every node of a Net: each node
// has an address of its own.
const (
	RaftPort   = 7000
	ClientPort = 6000
)

// NewNet creates the namespaces, veths and bridge for n nodes. Close
// removes all of it.
func NewNet(n int) (*Net, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("partitions need network namespaces: run as root (CI does)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("partitions need %s (Debian: apt-get install iproute2 iptables): %w", tool, err)
		}
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(b[:])
	nt := &Net{id: id, subnet: fmt.Sprintf("10.213.%d", int(b[0])%250+1), bridge: "olb-" + id, nodes: n}
	if err := nt.create(); err != nil {
		nt.Close()
		return nil, fmt.Errorf("create network namespaces: %w", err)
	}
	return nt, nil
}

func (nt *Net) ns(i int) string   { return fmt.Sprintf("ol-%s-n%d", nt.id, i) }
func (nt *Net) veth(i int) string { return fmt.Sprintf("olv-%s-%d", nt.id, i) }

// IP is node i's address (i from 1).
func (nt *Net) IP(i int) string { return fmt.Sprintf("%s.%d", nt.subnet, 10+i) }

func (nt *Net) create() error {
	steps := [][]string{
		{"ip", "link", "add", nt.bridge, "type", "bridge"},
		{"ip", "addr", "add", nt.subnet + ".1/24", "dev", nt.bridge},
		{"ip", "link", "set", nt.bridge, "up"},
		// Docker sets the FORWARD policy to DROP, and with br_netfilter that
		// drops bridged traffic between our namespaces too.
		{"iptables", "-I", "FORWARD", "-i", nt.bridge, "-o", nt.bridge, "-j", "ACCEPT"},
	}
	for i := 1; i <= nt.nodes; i++ {
		ns := nt.ns(i)
		steps = append(steps,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", nt.veth(i), "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"ip", "link", "set", nt.veth(i), "master", nt.bridge, "up"},
			[]string{"ip", "-n", ns, "addr", "add", nt.IP(i) + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return err
		}
	}
	return nil
}

// Command returns the argv that runs bin with args inside node i's
// namespace. `ip netns exec` execs the program, so the PID is the node's.
func (nt *Net) Command(i int, bin string, args ...string) (string, []string) {
	return "ip", append([]string{"netns", "exec", nt.ns(i), bin}, args...)
}

// CutRaft drops all Raft traffic of node i, both ways; its client port
// stays reachable.
func (nt *Net) CutRaft(i int) error {
	port := fmt.Sprint(RaftPort)
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		for _, dir := range []string{"--dport", "--sport"} {
			if err := run("ip", "netns", "exec", nt.ns(i), "iptables", "-A", chain, "-p", "tcp", dir, port, "-j", "DROP"); err != nil {
				return fmt.Errorf("cut raft of node %d: %w", i, err)
			}
		}
	}
	return nil
}

// Heal removes every rule CutRaft added on node i.
func (nt *Net) Heal(i int) error {
	if err := run("ip", "netns", "exec", nt.ns(i), "iptables", "-F"); err != nil {
		return fmt.Errorf("heal node %d: %w", i, err)
	}
	return nil
}

// Close removes the namespaces, the bridge and the FORWARD rule. It keeps
// going past errors, so a half-made Net is cleaned up too.
func (nt *Net) Close() error {
	var errs []error
	for i := 1; i <= nt.nodes; i++ {
		if err := run("ip", "netns", "del", nt.ns(i)); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	run("iptables", "-D", "FORWARD", "-i", nt.bridge, "-o", nt.bridge, "-j", "ACCEPT") //nolint:errcheck // absent if create failed early
	if err := run("ip", "link", "del", nt.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find") {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func run(argv ...string) error {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
