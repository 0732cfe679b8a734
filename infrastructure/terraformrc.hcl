# Terraform CLI configuration: providers come from the on-disk mirror only (no registry access).
# infrastructure/tf.py writes a copy with the mirror path it found (TF_PLUGIN_MIRROR overrides).
provider_installation {
  filesystem_mirror {
    path    = "/opt/tf-plugins"
    include = ["registry.terraform.io/*/*"]
  }
  direct {
    exclude = ["registry.terraform.io/*/*"]
  }
}
