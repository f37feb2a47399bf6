# The lab's static-token users: "user|groups(comma separated)". Sourced.
# Group names follow the webhook's role matrix convention:
#   apim:<tenant-namespace>:devops, apim:<tenant-namespace>:cpi, apim:cpi-admin, apim:gitops
LAB_USERS=(
  "admin|system:masters"
  "finance-devops|apim:tenant-finance:devops"
  "finance-cpi|apim:tenant-finance:cpi"
  "finance-cpi-2|apim:tenant-finance:cpi"
  "retail-devops|apim:tenant-retail:devops"
  "retail-cpi|apim:tenant-retail:cpi"
  "cpi-admin|apim:cpi-admin"
  "argocd|apim:gitops"
  "apim-operator|apim:operator"
  "apim-webhook|apim:webhook"
)
