//! Two enrolled boxes converge through the embedded broker (rumqttd) of a third: one over
//! TLS, presenting its bundle's certificate and trusting the broker's through the network CA,
//! the other over plain TCP. Every box logs in with its signed token; no box is listed in
//! the broker's users file, which holds devices only.

mod common;

use std::time::Duration;

use common::{Culao, Network, doc_id, eventually, free_tcp_port, holds, mqtt_config, with_bundle};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn two_boxes_converge_through_the_embedded_broker_of_a_third() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let (hub_bundle, _) = network.provision(root, "hub", "phan-thiet", None, &[]);
    let (clinic_bundle, _) = network.provision(root, "clinic", "health-centre", None, &[]);
    let (resort_bundle, resort_id) = network.provision(root, "resort", "resort-1", None, &[]);
    let (tcp, tls) = (free_tcp_port(), free_tcp_port());

    let hub_dir = root.join("hub");
    let users = root.join("mqtt-users");
    std::fs::write(&users, "# devices only\n").unwrap();
    let server = format!(
        "[mqtt.server]\nenabled = true\n\
         listen = \"127.0.0.1:{tcp}\"\ntls_listen = \"127.0.0.1:{tls}\"\nusers_file = {:?}",
        users.display().to_string()
    );
    let plain = format!("mqtt://127.0.0.1:{tcp}");
    let hub_config = mqtt_config(&hub_dir, &plain, &[], &server);
    let _hub = Culao::start_with(&hub_dir, 0, &[], &with_bundle(hub_config, &hub_bundle));

    // The clinic trusts the broker's certificate through its own bundle's tls/ca.pem.
    let clinic_dir = root.join("clinic");
    let secure = format!("mqtts://127.0.0.1:{tls}");
    let clinic_config = mqtt_config(&clinic_dir, &secure, &[&resort_id], "");
    let clinic = Culao::start_with(
        &clinic_dir,
        0,
        &[],
        &with_bundle(clinic_config, &clinic_bundle),
    );
    let resort_dir = root.join("resort");
    let resort_config = mqtt_config(&resort_dir, &plain, &[], "");
    let resort = Culao::start_with(
        &resort_dir,
        0,
        &[],
        &with_bundle(resort_config, &resort_bundle),
    );

    assert_eq!(
        clinic.put("radio", &doc_id(1), r#"{"alert":"storm"}"#).0,
        200
    );
    assert_eq!(
        resort.put("cards", &doc_id(2), r#"{"holder":"Lan"}"#).0,
        200
    );
    eventually(WAIT, "the clinic's alert on the resort", || {
        holds(&resort, "radio", 1)
    });
    eventually(WAIT, "the resort's card on the clinic", || {
        holds(&clinic, "cards", 2)
    });

    // Plain TCP admits boxes only: no anonymous client, no password guess.
    let publish = |login: &[&str]| {
        std::process::Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &tcp.to_string()])
            .args(["-t", "/tenants/x/y", "-m", "hi", "-q", "1"])
            .args(login)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(!publish(&[]), "anonymous client refused");
    assert!(
        !publish(&["-u", &resort_id, "-P", "culao-box-1:0:00:00"]),
        "a forged box token refused"
    );
}
