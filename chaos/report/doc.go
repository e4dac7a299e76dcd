// Package report writes a chaos run's outcome: summary.md and .json
// (operations, faults, verdicts, write outages after each kind of fault,
// rates), history.json and timeline.png.
package report
