package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"orderly/harness"
	"orderly/internal/freeport"
	"orderly/wire"
)

// artifactDir is where tests leave files for people to look at
// (screenshots); not in git. $ORDERLY_ARTIFACTS, else bin/artifacts.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("ORDERLY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "bin", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOperatorPage opens the balancer's operator's page in a real headless
// browser (Debian's chromium, which `make test` installs) through
// `orderctl dashboard`: it loads with no console error, shows three
// members and the leader, and the cluster's three shards, each with its
// leader; after the leader is SIGKILLed the same page, not reloaded,
// shows the new leader within seconds, and every shard led by a node
// that lives. Screenshots go to bin/artifacts.
func TestOperatorPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: `make test` installs it (make testdeps): %v", err)
	}
	c := startClusterWith(t, harness.ClusterConfig{HTTP: true, Extra: []string{"--shards", "3"}})
	lb := startBalancer(t, c)
	listen, err := freeport.Addr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dash := exec.Command(filepath.Join(bin, "orderctl"), "dashboard", "--target", lb.HTTPAddr, "--listen", listen)
	out, err := dash.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := dash.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dash.Process.Kill(); dash.Wait() }() //nolint:errcheck // teardown
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "http://"+listen) {
		t.Fatalf("orderctl dashboard said %q (%v)", line, err)
	}
	dashboardServesThePageOnly(t, listen)

	// Orders while the page is open, so that its charts have data.
	ctx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	load.Add(1)
	go func() {
		defer load.Done()
		cl := mustClient(t, lb.Addr)
		for k := int32(0); ctx.Err() == nil; k++ {
			cl.Order(ctx, k%100, k, wire.Regular) //nolint:errcheck // load only; failures during the kill are expected
		}
	}()
	defer func() { stopLoad(); load.Wait() }()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1200, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, with no timeout on it
		t.Fatalf("start chromium: %v", err)
	}
	var mu sync.Mutex
	var consoleErrors []string
	var console sync.WaitGroup
	console.Add(1)
	messages := chromedp.Console(bctx)
	go func() {
		defer console.Done()
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	defer console.Wait()
	defer cancelBrowser()
	tctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate("http://"+listen+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}

	type view struct {
		Leader   string   `json:"leader"`
		Rows     []string `json:"rows"` // id:role
		Backends int      `json:"backends"`
		Rate     string   `json:"rate"`
		Shards   []string `json:"shards"` // id:leader
	}
	read := func() view {
		v, err := chromedp.Run(tctx, chromedp.Evaluate[view](`({
			leader: document.getElementById("leader").textContent,
			rows: [...document.querySelectorAll("#members tbody tr")].map(r => r.dataset.id + ":" + r.dataset.role),
			backends: document.querySelectorAll("#backends tbody tr").length,
			rate: document.getElementById("rate").textContent,
			shards: [...document.querySelectorAll("#shard-table tbody tr")].map(r => r.dataset.id + ":" + r.dataset.leader),
		})`))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return v
	}
	leaderRow := func(v view) string {
		for _, r := range v.Rows {
			if id, role, _ := strings.Cut(r, ":"); role == "leader" {
				return id
			}
		}
		return ""
	}
	shot := func(name string) {
		png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(artifactDir(t), name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	var v view
	// shardsLedBy says whether the page shows three shards, each led by a
	// node other than not.
	shardsLedBy := func(v view, not string) bool {
		for _, sh := range v.Shards {
			if _, leader, _ := strings.Cut(sh, ":"); leader == "" || leader == not {
				return false
			}
		}
		return len(v.Shards) == 3
	}
	waitFor(t, 20*time.Second, "the page to show three members, a leader and three led shards", func() bool {
		v = read()
		return len(v.Rows) == 3 && v.Leader != "–" && v.Leader != "none" && leaderRow(v) == v.Leader && v.Backends == 3 &&
			shardsLedBy(v, "")
	})
	waitFor(t, 10*time.Second, "the orders chart to move", func() bool { v = read(); return v.Rate != "–" && v.Rate != "0" })
	t.Logf("page: leader %s, members %v, shards %v, %s orders/s", v.Leader, v.Rows, v.Shards, v.Rate)
	shot("operator-page.png")

	old := c.Node(v.Leader)
	if old == nil {
		t.Fatalf("the page's leader %q is not a node", v.Leader)
	}
	killed := time.Now()
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the page to show a new leader, of the meta group and of every shard", func() bool {
		v = read()
		return v.Leader != old.ID && v.Leader != "none" && leaderRow(v) == v.Leader &&
			strings.Contains(strings.Join(v.Rows, " "), old.ID+":unreachable") && shardsLedBy(v, old.ID)
	})
	t.Logf("page showed the new leader %s %v after the SIGKILL of %s", v.Leader, time.Since(killed).Round(100*time.Millisecond), old.ID)
	shot("operator-page-after-kill.png")
	mu.Lock()
	defer mu.Unlock()
	if len(consoleErrors) > 0 {
		t.Fatalf("console errors:\n%s", strings.Join(consoleErrors, "\n"))
	}
}

// dashboardServesThePageOnly: the dashboard forwards the page with the
// operator's certificate, and nothing else: not /metrics, not pprof (the
// command line, the heap), and nothing to a request whose Host is another
// site's (a DNS-rebinding page in the operator's browser).
func dashboardServesThePageOnly(t *testing.T, listen string) {
	t.Helper()
	get := func(path, host string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+listen+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/api/cluster", ""); code != http.StatusOK {
		t.Fatalf("the page's data through the dashboard: %d", code)
	}
	for _, path := range []string{"/metrics", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
		if code := get(path, ""); code != http.StatusNotFound {
			t.Errorf("%s through the dashboard: %d, want 404", path, code)
		}
	}
	_, port, _ := net.SplitHostPort(listen)
	if code := get("/api/cluster", "rebind.example:"+port); code != http.StatusMisdirectedRequest {
		t.Errorf("a request for another Host: %d, want 421", code)
	}
}
