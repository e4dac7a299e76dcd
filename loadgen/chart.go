package loadgen

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Mark is an event drawn on a timeline chart, such as an injected fault.
type Mark struct {
	At    float64 // seconds since the start
	Label string
}

// DrawTimeline draws throughput (top) and p50/p99 latency (bottom) per
// second into path, as PNG or SVG by its extension, with marks as
// vertical lines.
func DrawTimeline(path, title string, tl []Second, marks []Mark) error {
	ops, p50, p99 := make(plotter.XYs, len(tl)), make(plotter.XYs, len(tl)), make(plotter.XYs, len(tl))
	for i, s := range tl {
		x := float64(s.T) + 0.5
		ops[i] = plotter.XY{X: x, Y: float64(s.Ops)}
		p50[i] = plotter.XY{X: x, Y: s.P50}
		p99[i] = plotter.XY{X: x, Y: s.P99}
	}
	top := plot.New()
	top.Title.Text = title
	top.Y.Label.Text = "ops/s"
	bottom := plot.New()
	bottom.X.Label.Text = "seconds"
	bottom.Y.Label.Text = "latency ms"
	if err := addLine(top, "throughput", ops, color.RGBA{B: 200, A: 255}); err != nil {
		return err
	}
	if err := addLine(bottom, "p50", p50, color.RGBA{G: 150, A: 255}); err != nil {
		return err
	}
	if err := addLine(bottom, "p99", p99, color.RGBA{R: 200, A: 255}); err != nil {
		return err
	}
	for _, p := range []*plot.Plot{top, bottom} {
		p.Legend.Top = true
		p.Add(plotter.NewGrid())
		if err := addMarks(p, marks); err != nil {
			return err
		}
	}
	top.Y.Min, bottom.Y.Min = 0, 0
	bottom.X.Min, bottom.X.Max = top.X.Min, top.X.Max
	return save(path, top, bottom)
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return fmt.Errorf("chart line %s: %w", name, err)
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func addMarks(p *plot.Plot, marks []Mark) error {
	labelled := 0
	for _, m := range marks {
		if m.Label != "" {
			labelled++
		}
	}
	for _, m := range marks {
		if labelled > 24 {
			m.Label = "" // too many to read: lines only
		}
		ymax := max(p.Y.Max, 1)
		l, err := plotter.NewLine(plotter.XYs{{X: m.At, Y: p.Y.Min}, {X: m.At, Y: ymax}})
		if err != nil {
			return fmt.Errorf("chart mark: %w", err)
		}
		l.Color = color.RGBA{R: 120, G: 120, B: 120, A: 255}
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		p.Add(l)
		if m.Label != "" {
			labels, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: m.At, Y: ymax}}, Labels: []string{m.Label}})
			if err != nil {
				return fmt.Errorf("chart label: %w", err)
			}
			p.Add(labels)
		}
	}
	return nil
}

func save(path string, top, bottom *plot.Plot) error {
	const w, h = 10 * vg.Inch, 7 * vg.Inch
	var c draw.Canvas
	var writeTo func() error
	switch {
	case len(path) > 4 && path[len(path)-4:] == ".svg":
		svg := vgsvg.New(w, h)
		c = draw.New(svg)
		writeTo = func() error { return writeFile(path, svg) }
	default:
		img := vgimg.New(w, h)
		c = draw.New(img)
		writeTo = func() error { return writeFile(path, vgimg.PngCanvas{Canvas: img}) }
	}
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadX: vg.Points(4), PadY: vg.Points(8)}
	canvases := plot.Align([][]*plot.Plot{{top}, {bottom}}, tiles, c)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	return writeTo()
}
