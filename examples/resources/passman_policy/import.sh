# A policy module is imported by its name.
terraform import passman_policy.teams teams
