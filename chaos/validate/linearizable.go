package validate

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"orderly/chaos/model"
)

// segmentSize is how many operations a segment of one customer's history
// holds at least, where cuts allow (model.Segments): porcupine's memory
// for it stays near segmentSize²/8 bytes per checker.
const segmentSize = 2000

// maxSegment is the longest segment checked: porcupine would take about
// 1.25 GB for it, per checker. A longer one (a customer's history without
// a cut, the orders of unknown outcome in it open) fails the check as
// not checkable rather than exhaust the machine.
const maxSegment = 100_000

// customerCheck is one customer's result.
type customerCheck struct {
	customer      int32
	ops, segments int
	longest       int // operations in the longest segment
	result        porcupine.CheckResult
	illegal       *model.Segment // the first segment that is not linearizable
}

// Linearizable runs porcupine over every customer's history, segment by
// segment (model.Segments), a customer per core at a time, so that memory
// stays bounded however long the run. On a violation it writes the
// visualisation of the first illegal segment only to htmlPath: a long
// run's whole history makes a page that no browser opens. timeout bounds
// the whole check; a check it cuts short is a failure (porcupine Unknown).
func Linearizable(ops []model.Op, timeout time.Duration, htmlPath string) Verdict {
	byCustomer := map[int32][]int{} // indices into ops: no copy of a long history
	for i, op := range ops {
		byCustomer[op.Customer] = append(byCustomer[op.Customer], i)
	}
	customers := make([]int32, 0, len(byCustomer))
	for c := range byCustomer {
		customers = append(customers, c)
	}
	slices.Sort(customers)

	deadline := time.Now().Add(timeout)
	if timeout <= 0 {
		deadline = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	checks := make([]customerCheck, len(customers))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				mine := make([]model.Op, 0, len(byCustomer[customers[i]]))
				for _, k := range byCustomer[customers[i]] {
					mine = append(mine, ops[k])
				}
				checks[i] = checkCustomer(customers[i], model.LinearizableOps(mine), deadline)
			}
		}()
	}
	for i := range customers {
		next <- i
	}
	close(next)
	wg.Wait()

	v := Verdict{Name: "linearizable (porcupine, per customer)", Pass: true}
	var total, segments, longest int
	result := porcupine.Ok
	for _, c := range checks {
		total, segments, longest = total+c.ops, segments+c.segments, max(longest, c.longest)
		switch c.result {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			why := fmt.Sprintf("not checked within %v", timeout)
			if c.longest > maxSegment {
				why = fmt.Sprintf("a stretch of %d operations without a cut, over the %d checked in bounded memory", c.longest, maxSegment)
			}
			v.Errors = append(v.Errors, fmt.Sprintf("customer %d: %s", c.customer, why))
			if result == porcupine.Ok {
				result = porcupine.Unknown
			}
			continue
		}
		seg := c.illegal.Ops // carried orders first: the earliest call, then in call order
		from, to := time.Duration(seg[0].Call), time.Duration(seg[len(seg)-1].Call)
		v.Errors = append(v.Errors, fmt.Sprintf("customer %d: %s over its operations called from %v to %v (%d of its %d)",
			c.customer, c.result, from.Round(time.Millisecond), to.Round(time.Millisecond), len(seg), c.ops))
		if result != porcupine.Illegal {
			v.Detail = "; " + visualize(c, htmlPath, &v)
		}
		result = porcupine.Illegal
	}
	v.Pass = result == porcupine.Ok
	v.Detail = fmt.Sprintf("%s over %d operations of %d customers, in %d segments (the longest %d)",
		result, total, len(customers), segments, longest) + v.Detail
	v.Errors = firstFew(v.Errors)
	return v
}

// checkCustomer checks one customer's operations segment by segment and
// stops at the first that is not Ok.
func checkCustomer(customer int32, ops []porcupine.Operation, deadline time.Time) customerCheck {
	c := customerCheck{customer: customer, ops: len(ops), result: porcupine.Ok}
	segs := model.Segments(ops, segmentSize)
	c.segments = len(segs)
	for _, s := range segs {
		c.longest = max(c.longest, len(s.Ops))
	}
	if c.longest > maxSegment {
		c.result = porcupine.Unknown
		return c
	}
	for i := range segs {
		left := time.Until(deadline)
		if left <= 0 {
			c.result = porcupine.Unknown
			return c
		}
		if res := porcupine.CheckOperationsTimeout(segs[i].Model, segs[i].Ops, left); res != porcupine.Ok {
			c.result, c.illegal = res, &segs[i]
			return c
		}
	}
	return c
}

// visualize writes porcupine's page of c's illegal segment and says where.
func visualize(c customerCheck, htmlPath string, v *Verdict) string {
	s := c.illegal
	_, info := porcupine.CheckOperationsVerbose(s.Model, s.Ops, time.Minute) // its own minute: the page is worth it
	if err := porcupine.VisualizePath(s.Model, info, htmlPath); err != nil {
		v.Errors = append(v.Errors, fmt.Sprintf("visualisation: %v", err))
		return "no visualisation"
	}
	return fmt.Sprintf("customer %d's illegal operations in %s", c.customer, htmlPath)
}
