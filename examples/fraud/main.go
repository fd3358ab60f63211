// Command fraud runs the fraud-detection example application. It takes the
// flags of `stateloop run` and its own settings: --window, --threshold,
// --merchant-ttl, --merchant-latency and --merchant-budget, whose defaults
// come from the environment variables FRAUD_WINDOW, FRAUD_THRESHOLD,
// FRAUD_MERCHANT_TTL, FRAUD_MERCHANT_LATENCY and FRAUD_MERCHANT_BUDGET.
// See README.md.
package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stateloop/stateloop/app"
	"github.com/stateloop/stateloop/embedded"
	"github.com/stateloop/stateloop/examples/fraud/fraud"
	"github.com/stateloop/stateloop/functions"
	"github.com/stateloop/stateloop/topology"
)

func main() {
	embedded.ServeIfChild()
	os.Exit(app.Execute(command(os.Getenv)))
}

// command returns the program's command: app.Command with the settings of
// the application as extra flags, checked before it runs.
func command(getenv func(string) string) *cobra.Command {
	var o options
	cmd := app.Command("fraud", func() (topology.Topology, *functions.Registry) {
		return o.cfg.Build()
	})
	o.register(cmd.Flags(), getenv)
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := o.config()
		if err != nil {
			return err
		}
		o.cfg = cfg
		budget := "none"
		if cfg.ServiceBudget > 0 {
			budget = cfg.ServiceBudget.String()
		}
		fmt.Fprintf(cmd.OutOrStdout(), "fraud detection: fraud reports count for %v, alerts over %v, merchant scores kept %v, merchant service latency %v (budget %s)\n",
			cfg.Window, cfg.Threshold, cfg.MerchantTTL, o.latency, budget)
		return nil
	}
	return cmd
}

// options are the application's own flags.
type options struct {
	cfg     fraud.Config
	latency time.Duration
	envErrs []error
}

// register adds the flags to fs, with defaults from the environment.
func (o *options) register(fs *pflag.FlagSet, getenv func(string) string) {
	fs.DurationVar(&o.cfg.Window, "window", o.duration(getenv, "FRAUD_WINDOW", fraud.DefaultWindow),
		"how long a confirmed fraud counts for its account (env FRAUD_WINDOW); e.g. 30s for a demo")
	fs.Float64Var(&o.cfg.Threshold, "threshold", o.float(getenv, "FRAUD_THRESHOLD", fraud.DefaultThreshold),
		"score over which a transaction raises an alert, between 0 and 1 (env FRAUD_THRESHOLD)")
	fs.DurationVar(&o.cfg.MerchantTTL, "merchant-ttl", o.duration(getenv, "FRAUD_MERCHANT_TTL", fraud.DefaultMerchantTTL),
		"how long a merchant keeps its score before it asks the service again (env FRAUD_MERCHANT_TTL)")
	fs.DurationVar(&o.latency, "merchant-latency", o.duration(getenv, "FRAUD_MERCHANT_LATENCY", 0),
		"simulated latency of the merchant score service (env FRAUD_MERCHANT_LATENCY)")
	fs.DurationVar(&o.cfg.ServiceBudget, "merchant-budget", o.duration(getenv, "FRAUD_MERCHANT_BUDGET", 0),
		"longest wait for the merchant score service; a slower lookup answers the fallback score 0.5; 0 waits as long as it takes (env FRAUD_MERCHANT_BUDGET)")
}

// config returns the configuration the flags ask for, or every problem of
// the flags and the environment.
func (o *options) config() (fraud.Config, error) {
	errs := append([]error(nil), o.envErrs...)
	if o.latency < 0 {
		errs = append(errs, fmt.Errorf("--merchant-latency %v: must not be negative", o.latency))
	}
	if o.cfg.Window == 0 {
		errs = append(errs, errors.New("--window 0: a fraud report must count for some time"))
	}
	if o.cfg.Threshold == 0 {
		errs = append(errs, errors.New("--threshold 0: every transaction would raise an alert"))
	}
	if err := o.cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fraud.Config{}, errors.Join(errs...)
	}
	cfg := o.cfg
	cfg.Service = fraud.DemoMerchantService(o.latency)
	return cfg, nil
}

func (o *options) duration(getenv func(string) string, env string, def time.Duration) time.Duration {
	s := getenv(env)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q: want a duration such as 30s or 720h", env, s))
		return def
	}
	return d
}

func (o *options) float(getenv func(string) string, env string, def float64) float64 {
	s := getenv(env)
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		o.envErrs = append(o.envErrs, fmt.Errorf("%s=%q: want a number such as 0.8", env, s))
		return def
	}
	return f
}
