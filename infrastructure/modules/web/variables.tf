variable "name_prefix" {
  type = string
}

variable "region" {
  description = "The platform's region (the Cognito endpoint the page signs in at)."
  type        = string
}

variable "routes" {
  description = "The decoded infrastructure/definitions/routes.json: every service-forwarding rule's patterns become an API behaviour."
  type        = any
}

variable "services" {
  description = "The decoded infrastructure/definitions/services.json."
  type        = any
}

variable "api_origin_domain" {
  description = "The ALB's name as its certificate knows it (domain_name), or its DNS name where there is none (emulator)."
  type        = string
}

variable "origin_header_name" {
  description = "A header CloudFront adds to every request to the ALB (the ALB's web ACL blocks requests without it)."
  type        = string
  default     = ""
}

variable "origin_header_value" {
  type      = string
  default   = ""
  sensitive = true
}

variable "web_acl_arn" {
  description = "A CLOUDFRONT-scope WAFv2 web ACL (us-east-1) for the distribution; empty for none."
  type        = string
  default     = ""
}

variable "domain_name" {
  description = "The page's public name (e.g. books.example.com); empty to serve on the distribution's own *.cloudfront.net name."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "An ACM certificate in us-east-1 for domain_name; empty to issue one (DNS validation in zone_id)."
  type        = string
  default     = ""
}

variable "zone_id" {
  description = "Route 53 zone of domain_name: certificate validation records and the alias to the distribution."
  type        = string
  default     = ""
}

variable "response_headers_policy" {
  description = "Create the security-headers response headers policy (false only on the emulator, which lacks the API)."
  type        = bool
  default     = true
}

variable "price_class" {
  description = "PriceClass_100 (North America, Europe, Israel) is the cheapest; PriceClass_All serves every edge."
  type        = string
  default     = "PriceClass_100"
}

variable "noncurrent_days" {
  description = "Days a replaced page file is kept (the window to roll a bad publish back)."
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let destroy delete the bucket with the page (emulator only)."
  type        = bool
  default     = false
}

variable "tags" {
  type    = map(string)
  default = {}
}
