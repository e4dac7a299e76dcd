package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// drawScale draws orders/s by cluster size beside linear growth from the
// first point.
func drawScale(path string, rep report) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("orders/s by nodes (shards = nodes, 3 replicas, %.2f CPUs per node)", rep.QuotaCPUs)
	p.X.Label.Text = "nodes"
	p.Y.Label.Text = "orders/s"
	got, linear := make(plotter.XYs, len(rep.Points)), make(plotter.XYs, len(rep.Points))
	for i, pt := range rep.Points {
		got[i] = plotter.XY{X: float64(pt.Nodes), Y: pt.OrdersPerS}
		linear[i] = plotter.XY{X: float64(pt.Nodes), Y: rep.Points[0].OrdersPerS * float64(pt.Nodes) / float64(rep.Points[0].Nodes)}
	}
	for _, l := range []struct {
		name string
		xys  plotter.XYs
		c    color.Color
	}{{"measured", got, color.RGBA{B: 200, A: 255}}, {"linear", linear, color.RGBA{R: 160, G: 160, B: 160, A: 255}}} {
		line, points, err := plotter.NewLinePoints(l.xys)
		if err != nil {
			return err
		}
		line.Color, points.Color = l.c, l.c
		p.Add(line, points)
		p.Legend.Add(l.name, line)
	}
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
