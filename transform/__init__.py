"""Transform: runs the dbt project (``dbt_project/``) for one as-of date."""
