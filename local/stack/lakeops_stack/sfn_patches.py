"""Step Functions `aws-sdk:*` tasks as AWS runs them, on moto's ASL interpreter.

AWS documents the parameters of an aws-sdk integration in PascalCase, whatever the
service's own casing (`"StateMachineArn"` for sfn:listExecutions, whose API member is
`stateMachineArn`), and returns the response in PascalCase too (`$.Executions`). It maps
both ways with the service model
(https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
moto 5.2.5's interpreter keeps LocalStack's mapping code but never calls it: its
`_normalise_parameters` and `_normalise_response` are empty, so boto raised on the
PascalCase keys (the task failed with States.Runtime "'StateMachineArn'") and a response
kept boto's camelCase keys. These two overrides call the mapping with the operation's
input and output shapes from botocore's model. The optimized `states:startExecution(.sync:2)`
integration has the same gap (its own override only turns `Input` into a string first), so it
gets the mapping after its own step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=None)
def _operation_model(service: str, snake_action: str) -> Any:
    from botocore.session import get_session
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    model = get_session().get_service_model(service)
    for name in model.operation_names:
        if camel_to_snake_case(name) == snake_action:
            return model.operation_model(name)
    return None


def install_aws_sdk_task_patch() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
        StateTaskServiceAwsSdk,
    )

    if getattr(StateTaskServiceAwsSdk, "lakeops_patched", False):
        return

    def operation(self: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
        return _operation_model(
            self._get_boto_service_name(boto_service_name=boto_service_name),
            self._get_boto_service_action(service_action_name=service_action_name),
        )

    def normalise_parameters(
        self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        model = operation(self, boto_service_name, service_action_name)
        if model is not None and model.input_shape is not None:
            self._to_boto_request(parameters, model.input_shape)

    def normalise_response(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        model = operation(self, boto_service_name, service_action_name)
        if model is not None and model.output_shape is not None:
            self._from_boto_response(response, model.output_shape)

    StateTaskServiceAwsSdk._normalise_parameters = normalise_parameters
    StateTaskServiceAwsSdk._normalise_response = normalise_response
    StateTaskServiceAwsSdk.lakeops_patched = True

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
        StateTaskServiceSfn,
    )

    own_parameters = StateTaskServiceSfn._normalise_parameters
    own_response = StateTaskServiceSfn._normalise_response

    def sfn_parameters(
        self: Any, parameters: dict, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        own_parameters(self, parameters, boto_service_name=boto_service_name, service_action_name=service_action_name)
        normalise_parameters(self, parameters, boto_service_name, service_action_name)

    def sfn_response(
        self: Any, response: Any, boto_service_name: str | None = None, service_action_name: str | None = None
    ) -> None:
        own_response(self, response, boto_service_name=boto_service_name, service_action_name=service_action_name)
        normalise_response(self, response, boto_service_name, service_action_name)

    StateTaskServiceSfn._normalise_parameters = sfn_parameters
    StateTaskServiceSfn._normalise_response = sfn_response
