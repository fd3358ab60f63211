package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stateloop/stateloop/internal/ops"
)

func newDescribeCommand() *cobra.Command {
	var o opsOptions
	cmd := &cobra.Command{
		Use:   "describe --app APP",
		Short: "Describe a running application: instances, function types, ingresses, egresses, partitions, lag",
		Long: `Describe a running application from Kafka, from any machine that can reach
it:

  instances       the members of the application's consumer group (one per
                  stream thread of each instance), each with what it
                  publishes about itself in its membership: instance id,
                  threads, start time
  function types  the types the instances run (with the state a Go function
                  declares, or "remote"), and the types whose table topics
                  exist (a type of a namespace the application serves as a
                  whole gets its table when first invoked)
  ingresses       topic, message type and targets (or "router")
  egresses        name and topics
  partitions      every partition the group consumes (the loop topic, the
                  ingresses), with its owner, the group's committed offset,
                  the last stable offset and the lag in records

The topology comes from the running instances: with none running (group
Empty) only the tables and partitions are shown. JSON (--format json) is
the HTTP API's GET /v1/describe.`,
		Example: `  stateloop describe --app greeter
  stateloop describe --app greeter --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withClient(cmd.Context(), nil, func(c *ops.Client) error {
				d, err := c.Describe(cmd.Context())
				if err != nil {
					return o.problem("%w", err)
				}
				if o.format == "json" {
					return jsonLine(cmd.OutOrStdout(), d)
				}
				return printDescription(cmd.OutOrStdout(), d)
			})
		},
	}
	o.register(cmd, false, true)
	return cmd
}

func printDescription(w io.Writer, d ops.Description) error {
	state := d.State
	if state == "" {
		state = "unknown"
	}
	fmt.Fprintf(w, "application %s: %d partitions, consumer group %s %s, %d members, lag %d\n", d.App, d.Partitions, d.Group, state, len(d.Members), d.Lag)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	section := func(title string, empty bool, none string) {
		fmt.Fprintf(tw, "\n%s\n", title)
		if empty {
			fmt.Fprintf(tw, "  (%s)\n", none)
		}
	}
	section("instances", len(d.Members) == 0, "none running")
	for _, m := range d.Members {
		who := m.InstanceID
		if m.Info != nil {
			who = fmt.Sprintf("%s thread %d of %d", m.Info.Instance, m.Info.Thread, m.Info.Threads)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", who, m.Host, assignment(m.Assignment, d.App+"-loop"))
	}
	section("function types", len(d.Functions) == 0, "none known")
	for _, f := range d.Functions {
		var about []string
		if f.Remote {
			about = append(about, "remote")
		}
		for _, s := range f.State {
			st := s.Name + " (" + s.Type
			if s.Expires != "" {
				st += ", expires " + s.Expires
			}
			about = append(about, st+")")
		}
		if len(f.Ingresses) > 0 {
			about = append(about, "from "+strings.Join(f.Ingresses, ", "))
		}
		if !f.Listed {
			about = append(about, "of a namespace")
		}
		table := f.Table
		if !f.TableExists {
			table += " (not created yet)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Type, table, strings.Join(about, "; "))
	}
	for _, ns := range d.Namespaces {
		kind := ""
		if ns.Remote {
			kind = "remote"
		}
		fmt.Fprintf(tw, "  %s/*\t(every type of the namespace)\t%s\n", ns.Namespace, kind)
	}
	section("ingresses", len(d.Ingresses) == 0, "none known")
	for _, in := range d.Ingresses {
		to := strings.Join(in.Targets, ", ")
		if in.Router {
			to = "a router"
		}
		fmt.Fprintf(tw, "  %s\t%s\t-> %s\n", in.Topic, in.ValueType, to)
	}
	section("egresses", len(d.Egresses) == 0, "none known")
	for _, e := range d.Egresses {
		topics := strings.Join(e.Topics, ", ")
		if e.AnyTopic {
			topics += " (or the topic each record names)"
		}
		fmt.Fprintf(tw, "  %s\t-> %s\n", e.ID, topics)
	}
	fmt.Fprintf(tw, "\npartitions\n  TOPIC\tPARTITION\tOWNER\tCOMMITTED\tLSO\tLAG\n")
	for _, p := range d.Consumed {
		owner := "-"
		if p.Owner != "" {
			owner = p.Host
			for _, m := range d.Members {
				if m.MemberID == p.Owner && m.InstanceID != "" {
					owner = m.InstanceID
				}
			}
		}
		lag := fmt.Sprint(p.Lag)
		if !p.LagExact {
			lag = "≤ " + lag
		}
		if p.Error != "" {
			lag += " (" + p.Error + ")"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%d\t%d\t%s\n", p.Topic, p.Partition, owner, p.Committed, p.LSO, lag)
	}
	for _, e := range d.Errors {
		fmt.Fprintf(tw, "\nnot read: %s\n", e)
	}
	return tw.Flush()
}

// assignment describes the partitions of a member, the loop topic's
// first, as "topic 0,1,2".
func assignment(a map[string][]int32, loop string) string {
	topics := make([]string, 0, len(a))
	for t := range a {
		topics = append(topics, t)
	}
	slices.SortFunc(topics, func(x, y string) int {
		switch {
		case x == loop:
			return -1
		case y == loop:
			return 1
		}
		return strings.Compare(x, y)
	})
	var parts []string
	for _, t := range topics {
		var ps []string
		for _, p := range a[t] {
			ps = append(ps, fmt.Sprint(p))
		}
		parts = append(parts, t+" "+strings.Join(ps, ","))
	}
	return strings.Join(parts, "; ")
}
