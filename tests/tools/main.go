// legate-tools: the Go-only checks that Legate's tests run on what users install.
//
//	legate-tools validate-bundle DIR   the operator-framework validators on an OLM bundle
//	legate-tools kind-config FILE      kind's own strict decoding of a cluster config
//
// Both exit 1 on any finding, so a test (or a shell) cannot miss one: the
// upstream operator-verify command logs errors and still exits 0.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	"github.com/operator-framework/api/pkg/validation/errors"
	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
)

func main() {
	if len(os.Args) != 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "validate-bundle":
		err = validateBundle(os.Args[2])
	case "kind-config":
		err = kindConfig(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "legate-tools %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: legate-tools validate-bundle DIR | kind-config FILE")
	os.Exit(2)
}

// The Kubernetes version the bundle is checked against for removed APIs: the
// one the tests' control plane runs.
const targetKubeVersion = "1.37"

// validateBundle runs the default bundle validators (CSV, CRDs, bundle
// structure), the OperatorHub ones (operatorhub/v2, standard categories and
// capability levels: together what the deprecated "operatorhub" validator of
// `operator-verify manifests --operatorhub_validate` checked), the checks of
// the extra objects (the PodDisruptionBudget) and the good practices that
// OperatorHub reviewers ask for. Warnings count as findings: a bundle that
// OperatorHub would flag is not done.
func validateBundle(dir string) error {
	bundle, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		return fmt.Errorf("loading the bundle in %s: %w", dir, err)
	}
	validators := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator,
		validation.StandardCategoriesValidator,
		validation.StandardCapabilitiesValidator,
		validation.ObjectValidator,
		validation.GoodPracticesValidator,
	)
	objects := append(bundle.ObjectsToValidate(), map[string]string{"k8s-version": targetKubeVersion})
	var findings []string
	for _, result := range validators.Validate(objects...) {
		for _, e := range append(result.Errors, result.Warnings...) {
			findings = append(findings, describe(result, e))
		}
	}
	if len(findings) > 0 {
		return fmt.Errorf("%d finding(s) in %s:\n  %s", len(findings), dir, strings.Join(findings, "\n  "))
	}
	fmt.Printf("bundle %s (%s): no errors or warnings\n", bundle.Name, dir)
	return nil
}

func describe(result errors.ManifestResult, e errors.Error) string {
	return fmt.Sprintf("[%s] %s", result.Name, e.Error())
}

// stopAfterLoading is a config that kind refuses after it has loaded the
// file under test: Provider.Create applies its options in order and returns
// at the first error, so no cluster (and no container engine) is touched.
const stopAfterLoading = "apiVersion: legate.dev/stop-after-loading\nkind: Cluster\n"

// kindConfig decodes FILE with kind's own loader (the one `kind create
// cluster --config FILE` uses: unknown fields are errors), then prints the
// decoded v1alpha4.Cluster as JSON for the test to check what it maps.
func kindConfig(path string) error {
	provider := cluster.NewProvider(cluster.ProviderWithDocker())
	err := provider.Create("legate-config-check",
		cluster.CreateWithConfigFile(path),
		cluster.CreateWithRawConfig([]byte(stopAfterLoading)))
	if err == nil || !strings.Contains(err.Error(), "legate.dev/stop-after-loading") {
		return fmt.Errorf("kind refused %s: %v", path, err)
	}
	// The same strict decoding, into kind's public types, to print them.
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	decoder := yaml.NewDecoder(bytes.NewReader(raw))
	decoder.KnownFields(true)
	var config v1alpha4.Cluster
	if err := decoder.Decode(&config); err != nil {
		return fmt.Errorf("decoding %s: %w", path, err)
	}
	out, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}
