"""Planned state: a Terraform plan (``terraform show -json``) or an ARM template (JSON, compiled
Bicep) read into the same snapshot model the live collector fills, so every ``azure.*`` check
judges a change before it reaches Azure.

- ``terraform``: the plan's ``resource_changes`` (``after``, ``after_unknown``,
  ``after_sensitive``) and ``configuration`` (which attribute was declared, which server a
  child resource refers to through an expression).
- ``arm``: templates, parameters files, copy loops, nested deployments, child resources nested
  or top level; ``expressions`` evaluates ARM's template language where the inputs allow.
- ``build``: the server a plan or template describes, as an ``AzureServer`` with Azure's
  parameter table filled in and what the input leaves open (``PlannedValue``).
- ``domains``: the values an open value can take, each list with its source.
- ``locate``: findings named by resource address, and their file and line (``--iac-root``).

Vendor and IaC shapes (azurerm attribute names, ARM template syntax) never leave this package.
Secrets never enter a snapshot: only the attributes the checks read are mapped, and a value
Terraform marks sensitive or a secure template parameter is never copied.
"""
