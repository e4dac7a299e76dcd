package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"orderly/pki"
	"orderly/wire"
)

// certsCmd makes a cluster's CA and certificates (no openssl needed).
func certsCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "make a CA and node, balancer and client certificates",
		Long: `Every orderly port but the seed's speaks mutual TLS. certs makes what that needs:
  orderctl certs init  --dir D                 a CA: D/ca.crt, D/ca.key (keep ca.key offline)
  orderctl certs issue --dir D --name N --role R [--hosts h,...] [--max-role R]
                                               D/N.crt and D/N.key, signed by the CA
  orderctl certs dev   --dir D                 what make run uses: a CA, n1..n3, orderlb and
                                               one client per role (orderctl is the admin)
  orderctl certs revoke --dir D --name N       add N's serial to D/revoked, the deny-list every
                                               process reads beside its ca.crt
Roles: reader (get, scan, status, members list), writer (+ orders), admin (+ members,
leadership), node (a cluster member; --name is its node id), balancer (orderlb).`,
		// No cluster to reach: skip the address and certificate lookup.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
	}
	var dir string
	c.PersistentFlags().StringVar(&dir, "dir", "", "certificate directory (required)")

	var caValid time.Duration
	initC := &cobra.Command{
		Use:   "init",
		Short: "create a CA in --dir",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if err := pki.InitCA(dir, caValid); err != nil {
				return err
			}
			return g.Print(map[string]string{"ca": filepath.Join(dir, pki.CAFile)}, "created CA %s (key %s: keep it safe)\n",
				filepath.Join(dir, pki.CAFile), filepath.Join(dir, pki.CAKeyFile))
		},
	}
	initC.Flags().DurationVar(&caValid, "valid-for", 10*365*24*time.Hour, "how long the CA is valid")

	var name, role, maxRole, hosts, out string
	var valid time.Duration
	var force bool
	issue := &cobra.Command{
		Use:   "issue",
		Short: "sign a node, balancer or client certificate with the CA in --dir",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			r, err := wire.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			if valid <= 0 {
				return fmt.Errorf("--valid-for %s: must be positive", valid)
			}
			if out == "" {
				out = dir
			}
			crt := filepath.Join(out, name+".crt")
			if _, err := os.Stat(crt); err == nil && !force {
				return fmt.Errorf("%s exists; --force replaces it (a running process picks the new one up)", crt)
			}
			req := pki.Request{Name: name, Role: r, NotAfter: time.Now().Add(valid)}
			if maxRole != "" {
				if req.MaxRole, err = wire.ParseRole(maxRole); err != nil {
					return fmt.Errorf("--max-role: %w", err)
				}
			}
			for _, h := range strings.Split(hosts, ",") {
				if h = strings.TrimSpace(h); h != "" {
					req.Hosts = append(req.Hosts, h)
				}
			}
			if err := pki.Issue(dir, out, req); err != nil {
				return err
			}
			return g.Print(map[string]string{"cert": crt, "key": filepath.Join(out, name+".key"), "role": r.String()},
				"issued %s (role %s, valid until %s) and its key %s\n", crt, r, req.NotAfter.Format(time.RFC3339), filepath.Join(out, name+".key"))
		},
	}
	issue.Flags().StringVar(&name, "name", "", "common name: a node's id, or who the client is (required)")
	issue.Flags().StringVar(&role, "role", "", "reader, writer, admin, node or balancer (required)")
	issue.Flags().StringVar(&maxRole, "max-role", "", "a balancer's: the highest client role it may forward (reader, writer or admin; default writer)")
	issue.Flags().StringVar(&hosts, "hosts", "", "DNS names and IPs the server is dialed by, comma-separated (nodes and balancers)")
	issue.Flags().DurationVar(&valid, "valid-for", 365*24*time.Hour, "how long the certificate is valid")
	issue.Flags().StringVar(&out, "out", "", "where to write NAME.crt and NAME.key (default --dir)")
	issue.Flags().BoolVar(&force, "force", false, "replace an existing certificate (rotation)")

	var nodes, devHosts string
	dev := &cobra.Command{
		Use:   "dev",
		Short: "make (or keep) a development CA and every certificate make run needs",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if err := pki.EnsureDev(dir, strings.Split(nodes, ","), strings.Split(devHosts, ",")); err != nil {
				return err
			}
			return g.Print(map[string]string{"dir": dir}, "development certificates in %s\n", dir)
		},
	}
	dev.Flags().StringVar(&nodes, "nodes", "n1,n2,n3", "node ids")
	dev.Flags().StringVar(&devHosts, "hosts", "127.0.0.1,localhost", "hosts every server certificate names")
	var revokeCert string
	revoke := &cobra.Command{
		Use:   "revoke --dir D (--name N | --cert FILE)",
		Short: "add a certificate to the deny-list beside the CA (D/revoked); copy it beside every process's ca.crt",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if dir == "" {
				return fmt.Errorf("--dir is required")
			}
			if (name == "") == (revokeCert == "") {
				return fmt.Errorf("give --name (a certificate in --dir) or --cert FILE")
			}
			if revokeCert == "" {
				revokeCert = filepath.Join(dir, name+".crt")
			}
			serial, err := pki.Revoke(dir, revokeCert)
			if err != nil {
				return err
			}
			list := filepath.Join(dir, pki.RevokedFile)
			return g.Print(map[string]string{"serial": serial, "deny_list": list},
				"revoked %s (serial %s) in %s: every process that has this file beside its ca.crt refuses it from its next handshake\n", revokeCert, serial, list)
		},
	}
	revoke.Flags().StringVar(&name, "name", "", "the certificate --dir/NAME.crt")
	revoke.Flags().StringVar(&revokeCert, "cert", "", "the certificate file to revoke")
	c.AddCommand(initC, issue, dev, revoke)
	return c
}
