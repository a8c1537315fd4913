# Written as the lab's src/api.py is: discovery through cmlapi, for a CML session.
import json
import os

import cmlapi


class ApiUtility:
    """Utility class for CML API v2 calls used by the monitoring scripts."""

    def __init__(self):
        self.client = cmlapi.default_client(
            url=os.getenv("CDSW_API_URL").replace("/api/v1", ""),
            cml_api_key=os.getenv("CDSW_APIV2_KEY"),
        )

    def get_latest_deployment_details(self, model_name):
        """Given a model name, returns the latest deployment's CRN, access key and ids."""
        project_id = os.environ["CDSW_PROJECT_ID"]
        search_filter = {"name": model_name}
        res = self.client.list_models(
            project_id, search_filter=json.dumps(search_filter), async_req=True
        ).get()
        models = res.models
        model_id = models[0].id
        model_crn = models[0].crn
        model_access_key = models[0].access_key

        builds = self.client.list_model_builds(project_id, model_id, sort="created_at", async_req=True).get()
        build_list = builds.model_builds
        latest_build = build_list[-1]
        latest_build_id = latest_build.id

        deployments = self.client.list_model_deployments(project_id, model_id, latest_build_id)
        deployment_list = [d.to_dict() for d in deployments.model_deployments]
        latest_deployment_crn = deployment_list[-1]["crn"]

        return {
            "model_name": model_name,
            "model_id": model_id,
            "model_crn": model_crn,
            "model_access_key": model_access_key,
            "latest_build_id": latest_build_id,
            "latest_deployment_crn": latest_deployment_crn,
        }
