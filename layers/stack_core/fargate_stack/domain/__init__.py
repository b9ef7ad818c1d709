"""Pure decisions of the stack. Never imports boto3, botocore, requests or Powertools."""
