"""Differential privacy of the federated rounds: ``central`` (DP-FedAvg at the aggregator: each
update clipped, Gaussian noise on the sum) and ``accountant`` (its epsilon, by dp-accounting's
RDP accountant)."""
