# The MLflow tracking server of deploy/mlflow.yaml: PostgreSQL backend, S3-compatible artifacts.
# Build from the repository root: docker build -f deploy/mlflow.Dockerfile -t dnacnn-mlflow:3.17.2 .
FROM python:3.11-slim
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg2-binary>=2.9" "boto3>=1.34"
USER 1000
EXPOSE 5000
ENTRYPOINT ["mlflow", "server"]
