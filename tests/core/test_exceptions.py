from apps.core.exceptions import api_exception_handler
from apps.core.model_client import ModelServiceError, ModelServiceRejected, ModelServiceUnavailable


def test_model_service_failures_are_gateway_errors_never_500():
    rejected = api_exception_handler(ModelServiceRejected("too long", status=400, code="context_length_exceeded"), {})
    failed = api_exception_handler(ModelServiceError("internal error while generating", status=500), {})
    down = api_exception_handler(ModelServiceUnavailable("connection refused"), {})

    assert (rejected.status_code, rejected.data) == (502, {"detail": "The model service could not answer: too long"})
    assert failed.status_code == 502
    assert down.status_code == 503


def test_an_application_error_is_json_naming_the_problem_with_the_keys_its_client_expects():
    from apps.core.errors import ApplicationError

    response = api_exception_handler(ApplicationError(message="Unsupported language 'cobol'.", status=422,
                                                      code="unsupported_language", field="language",
                                                      extra={"supported": ["go", "python"]}), {})

    assert response.status_code == 422
    assert response.data == {"detail": "Unsupported language 'cobol'.", "code": "unsupported_language",
                             "field": "language", "supported": ["go", "python"]}
