package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"orderly/internal/freeport"
	"orderly/wire"
)

// Compose drives one project of deploy/compose.yaml: a private subnet, free
// published ports and a project name of its own, so that it can run next
// to `make compose-up` and other tests.
type Compose struct {
	Project    string
	Net        string // first three octets of the project's /24
	LBAddr     string // the balancer's orderly port on 127.0.0.1
	LegacyAddr string
	cmd        []string // compose argv: the tool, -p, -f
	env        []string
	// Certs are the project's certificates, copied out of its certs
	// volume by Up: the host's clients present them.
	Certs *Certs
}

// DockerAvailable says why Docker cannot be used here, or nil.
func DockerAvailable() error {
	if out, err := exec.Command("docker", "info").CombinedOutput(); err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("`docker info` failed, so there is no Docker engine: %v %s", err, line)
	}
	if composeTool() == nil {
		return errors.New("neither `docker compose` nor `docker-compose` is installed")
	}
	return nil
}

func composeTool() []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	return nil
}

// NewCompose prepares a project of file running image; env adds variables
// (such as ORDERLY_TEST_FAULT). Nothing starts until Up.
func NewCompose(file, image string, env ...string) (*Compose, error) {
	if err := DockerAvailable(); err != nil {
		return nil, err
	}
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	c := &Compose{Project: fmt.Sprintf("orderly%x", b), Net: fmt.Sprintf("10.215.%d", int(b[0])%250+1)}
	lb, err := freeport.Addr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	legacy, err := freeport.Addr("127.0.0.1")
	if err != nil {
		return nil, err
	}
	c.LBAddr, c.LegacyAddr = lb, legacy
	port := func(a string) string { _, p, _ := strings.Cut(a, ":"); return p }
	c.env = append([]string{"ORDERLY_IMAGE=" + image, "ORDERLY_NET=" + c.Net,
		"ORDERLY_LB_PORT=" + port(lb), "ORDERLY_LEGACY_PORT=" + port(legacy),
		fmt.Sprintf("ORDERLY_PEERS=n1=%[1]s.11:7000,n2=%[1]s.12:7000,n3=%[1]s.13:7000", c.Net),
		fmt.Sprintf("ORDERLY_BACKENDS=%[1]s.11:6000,%[1]s.12:6000,%[1]s.13:6000", c.Net)}, env...)
	c.cmd = append(composeTool(), "-p", c.Project, "-f", file)
	return c, nil
}

// Nodes are the compose services that run orderd.
func (c *Compose) Nodes() []string { return []string{"n1", "n2", "n3"} }

// IP is a node's address on the project network.
func (c *Compose) IP(id string) string {
	return c.Net + "." + map[string]string{"n1": "11", "n2": "12", "n3": "13"}[id]
}

// ClientAddr is a node's client address, reachable from the host.
func (c *Compose) ClientAddr(id string) string { return fmt.Sprintf("%s:%d", c.IP(id), ClientPort) }

// Volume is the name of a node's data volume.
func (c *Compose) Volume(id string) string { return c.Project + "_" + id + "-data" }

// Network is the project's network name.
func (c *Compose) Network() string { return c.Project + "_orderly" }

func (c *Compose) exec(ctx context.Context, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Run runs a compose subcommand on the project.
func (c *Compose) Run(ctx context.Context, args ...string) (string, error) {
	return c.exec(ctx, append(append([]string{}, c.cmd...), args...)...)
}

// Docker runs a docker command.
func (c *Compose) Docker(ctx context.Context, args ...string) (string, error) {
	return c.exec(ctx, append([]string{"docker"}, args...)...)
}

// Container is the id of a service's container.
func (c *Compose) Container(ctx context.Context, service string) (string, error) {
	id, err := c.Run(ctx, "ps", "-q", service)
	if err == nil && id == "" {
		err = fmt.Errorf("service %s has no container", service)
	}
	return id, err
}

// DockerOn runs a docker command whose last argument is a service's
// container, e.g. DockerOn(ctx, "n1", "kill").
func (c *Compose) DockerOn(ctx context.Context, service string, args ...string) error {
	id, err := c.Container(ctx, service)
	if err != nil {
		return err
	}
	_, err = c.Docker(ctx, append(args, id)...)
	return err
}

// NodeStatus asks a node from inside its container (the scratch image
// holds orderctl and nothing else).
func (c *Compose) NodeStatus(ctx context.Context, service string) (wire.StatusInfo, error) {
	id, err := c.Container(ctx, service)
	if err != nil {
		return wire.StatusInfo{}, err
	}
	out, err := c.Docker(ctx, "exec", id, "/orderctl", "--certs", "/certs", "--addr", "127.0.0.1:6000", "--timeout", "2s", "--json", "status")
	if err != nil {
		return wire.StatusInfo{}, err
	}
	var s struct {
		Role     string `json:"role"`
		LeaderID string `json:"leader_id"`
		Applied  uint64 `json:"applied_index"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return wire.StatusInfo{}, fmt.Errorf("status of %s: %w: %s", service, err, out)
	}
	return wire.StatusInfo{ID: service, Role: s.Role, LeaderID: s.LeaderID, AppliedIndex: s.Applied}, nil
}

// Up starts the project, copies its certificates to certDir, and waits
// until the balancer knows a leader.
func (c *Compose) Up(ctx context.Context, certDir string) error {
	if _, err := c.Run(ctx, "up", "-d"); err != nil {
		return err
	}
	if c.Certs == nil {
		id, err := c.Run(ctx, "ps", "-a", "-q", "certs")
		if err != nil || id == "" {
			return fmt.Errorf("compose %s: no certs container: %v", c.Project, err)
		}
		if _, err := c.Docker(ctx, "cp", id+":/certs/.", certDir); err != nil {
			return err
		}
		if c.Certs, err = NewCerts(certDir); err != nil { // every file is there: nothing is made
			return err
		}
	}
	_, err := c.WaitLeader(ctx, "")
	return err
}

// ClientTLS is the admin client's TLS, once Up has run.
func (c *Compose) ClientTLS() func(string) *tls.Config { return c.Certs.Admin() }

// WaitLeader waits up to a minute until the balancer knows a leader other
// than not, and returns its id.
func (c *Compose) WaitLeader(ctx context.Context, not string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		s, err := Status(sctx, c.LBAddr, c.ClientTLS())
		scancel()
		if err == nil && s.LeaderID != "" && s.LeaderID != not {
			return s.LeaderID, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("compose %s: no leader (other than %q): %w (last: %v)", c.Project, not, ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Down removes the project's containers, network and volumes.
func (c *Compose) Down(ctx context.Context) error {
	_, err := c.Run(ctx, "down", "-v", "--remove-orphans", "-t", "5")
	return err
}
