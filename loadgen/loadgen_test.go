package loadgen

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderly/wire"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Addrs: []string{"x:1"}, Customers: 1, Orders: 1, Mix: MixRegular, Pipeline: 1, Consistency: wire.Linearizable}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"no addrs":         func(c *Config) { c.Addrs = nil },
		"no customers":     func(c *Config) { c.Customers = 0 },
		"negative orders":  func(c *Config) { c.Orders = -1 },
		"no end":           func(c *Config) { c.Orders, c.Duration = 0, 0 },
		"read share > 100": func(c *Config) { c.ReadPct = 101 },
		"no pipeline":      func(c *Config) { c.Pipeline = 0 },
		"bad mix":          func(c *Config) { c.Mix = "gold" },
		"negative first":   func(c *Config) { c.FirstCustomer = -1 },
		"negative conns":   func(c *Config) { c.Conns = -1 },
		"seed, pipelined":  func(c *Config) { c.Seed, c.Pipeline = true, 2 },
		"negative new":     func(c *Config) { c.NewCustomers = -1 },
		"new, with reads":  func(c *Config) { c.NewCustomers, c.ReadPct = 10, 50 },
		"new, seed port":   func(c *Config) { c.NewCustomers, c.Seed = 10, true },
		"negative rate":    func(c *Config) { c.Rate = -1 },
	} {
		c := ok
		mod(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	fresh := ok
	fresh.Orders, fresh.NewCustomers = 0, 10 // ends when they are placed
	if err := fresh.Validate(); err != nil {
		t.Fatalf("new customers without orders or a duration refused: %v", err)
	}
}

// New customers' ids never repeat and are never negative.
func TestNewCustomerIDsAreDistinct(t *testing.T) {
	seen := make(map[int32]bool)
	for k := 1; k <= 200_000; k++ {
		id := NewCustomerID(k)
		if id < 0 || seen[id] {
			t.Fatalf("customer %d: id %d (negative or repeated)", k, id)
		}
		seen[id] = true
	}
}

func TestTimelineAndSummary(t *testing.T) {
	tl := newTimeline()
	for i := range 100 {
		tl.add(1500*time.Millisecond, time.Duration(i+1)*time.Millisecond, false)
	}
	tl.add(2100*time.Millisecond, 0, true)
	secs := tl.seconds()
	if len(secs) != 3 || secs[0].Ops != 0 || secs[1].Ops != 100 || secs[2].Errors != 1 {
		t.Fatalf("timeline %+v", secs)
	}
	if p := secs[1].P50; p < 49.9 || p > 50.1 {
		t.Fatalf("p50 of 1..100 ms is %v", p)
	}
	if p := secs[1].P99; p < 98.9 || p > 99.1 {
		t.Fatalf("p99 of 1..100 ms is %v", p)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, secs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || lines[0] != "t,ops_per_s,p50_ms,p99_ms,errors" || !strings.HasPrefix(lines[2], "1,100,") {
		t.Fatalf("csv:\n%s", buf.String())
	}
	if err := DrawTimeline(filepath.Join(t.TempDir(), "t.svg"), "test", secs, []Mark{{At: 1, Label: "kill"}}); err != nil {
		t.Fatalf("svg chart: %v", err)
	}
}
