package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: outdir()})
	cfg, err := LoadConfig(func(key string) any { return app.Node().TryGetContext(jsii.String(key)) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		jsii.Close()
		os.Exit(1)
	}
	NewStack(app, cfg)
	app.Synth(nil)
}

// outdir is where to write the cloud assembly: CDK_OUTDIR, a relative one
// taken from the repository root. The CDK CLI runs in the root (cdk.json)
// and passes CDK_OUTDIR=cdk.out, but cdk.json's app command first changes
// into infra/: read as the app's own, it would write infra/cdk.out while the
// CLI reads cdk.out. (Setting the variable here would come too late: the
// jsii runtime has copied the environment for node when the CDK packages
// were initialized.) nil, the CDK's default, when the variable is unset.
func outdir() *string {
	dir := os.Getenv("CDK_OUTDIR")
	if dir == "" {
		return nil
	}
	if !filepath.IsAbs(dir) {
		if _, err := os.Stat(filepath.Join("..", "cdk.json")); err == nil {
			dir = filepath.Join("..", dir)
		}
	}
	return jsii.String(dir)
}
