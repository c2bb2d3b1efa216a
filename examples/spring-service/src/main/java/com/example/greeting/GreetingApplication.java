package com.example.greeting;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.RestController;

/** One REST endpoint; the actuator adds /actuator/health. */
@SpringBootApplication
@RestController
public class GreetingApplication {
    public static void main(String[] args) {
        SpringApplication.run(GreetingApplication.class, args);
    }

    @GetMapping("/greeting")
    public String greeting() {
        return "Hello from Spring Boot in an Occlum enclave!\n";
    }
}
